import CMariaDB

/// The buffers libmariadb fetches result rows into, reused for every row and
/// for every execution while the column layout stays the same.
///
/// Layout: integers and doubles land in one 8-byte slot per column
/// (`scalars`), so reading them allocates nothing; text and binary columns
/// land in one growable buffer per column, pointed at by that column's
/// `MYSQL_BIND`. A value longer than its buffer is detected from the length
/// libmariadb reports, the buffer grows to fit and the column is fetched
/// again with `mysql_stmt_fetch_column`; the larger buffer is kept (rebound)
/// for the following rows.
///
/// Data-truncation reporting is switched off on the connection
/// (`MYSQL_REPORT_DATA_TRUNCATION` = 0), so a fetched row always returns 0
/// and the lengths are the one signal relied on. Some Connector/C sources
/// return `MYSQL_DATA_TRUNCATED` before marking the row as being fetched,
/// which makes `mysql_stmt_fetch_column` refuse the first row of an
/// unbuffered result; the 3.3 library Debian ships handled it either way in
/// the tests, but nothing here depends on that.
final class ResultBindings {
    enum Kind: UInt8 {
        case null, int, uint, double, text, bytes
    }

    /// What decides the binding of one column; a new execution whose columns
    /// differ in any of these gets new bindings.
    struct ColumnLayout: Equatable {
        var type: UInt32
        var isUnsigned: Bool
        var isBinary: Bool
    }

    let count: Int
    let names: [String]
    let kinds: [Kind]
    let layout: [ColumnLayout]
    let binds: UnsafeMutablePointer<MYSQL_BIND>
    let lengths: UnsafeMutablePointer<UInt>
    let nulls: UnsafeMutablePointer<Int8>
    let errors: UnsafeMutablePointer<Int8>
    let scalars: UnsafeMutablePointer<UInt64>
    /// The columns with a variable-length buffer.
    let variableColumns: [Int]
    /// Counts rows handed out; a ``RowView`` is valid only while this still
    /// holds the value it was made with.
    let generation: UnsafeMutablePointer<UInt64>

    /// A new variable-length buffer holds this much (or the column's declared
    /// width, when smaller); it grows when a longer value arrives.
    static let initialVariableCapacity = 4096
    /// Smallest variable-length buffer: DECIMAL and temporal values are
    /// converted to text here and need a few dozen bytes whatever the width.
    static let minimumVariableCapacity = 64

    init(fields: UnsafeMutablePointer<MYSQL_FIELD>, count: Int) {
        self.count = count
        binds = .allocate(capacity: count)
        lengths = .allocate(capacity: count)
        lengths.initialize(repeating: 0, count: count)
        nulls = .allocate(capacity: count)
        nulls.initialize(repeating: 0, count: count)
        errors = .allocate(capacity: count)
        errors.initialize(repeating: 0, count: count)
        scalars = .allocate(capacity: count)
        scalars.initialize(repeating: 0, count: count)
        generation = .allocate(capacity: 1)
        generation.initialize(to: 0)

        var names: [String] = []
        var kinds: [Kind] = []
        var variableColumns: [Int] = []
        let layout = Self.layout(of: fields, count: count)
        for index in 0..<count {
            let field = fields[index]
            names.append(Self.name(of: field))
            let kind = Self.kind(of: field)
            kinds.append(kind)

            var bind = MYSQL_BIND()
            bind.length = lengths + index
            bind.is_null = nulls + index
            bind.error = errors + index
            switch kind {
            case .null:
                bind.buffer_type = MYSQL_TYPE_NULL
            case .int, .uint:
                // Every integer width is fetched as 64 bits; libmariadb converts.
                bind.buffer_type = MYSQL_TYPE_LONGLONG
                bind.is_unsigned = kind == .uint ? 1 : 0
                bind.buffer = UnsafeMutableRawPointer(scalars + index)
                bind.buffer_length = 8
            case .double:
                bind.buffer_type = MYSQL_TYPE_DOUBLE
                bind.buffer = UnsafeMutableRawPointer(scalars + index)
                bind.buffer_length = 8
            case .text, .bytes:
                // BLOB as the buffer type copies raw bytes for every string and
                // binary type, and turns DECIMAL and temporal values into text.
                let declared = Int(clamping: field.length)
                let capacity = max(Self.minimumVariableCapacity, min(declared, Self.initialVariableCapacity))
                bind.buffer_type = MYSQL_TYPE_BLOB
                bind.buffer = .allocate(byteCount: capacity, alignment: 8)
                bind.buffer_length = UInt(capacity)
                variableColumns.append(index)
            }
            (binds + index).initialize(to: bind)
        }
        self.names = names
        self.kinds = kinds
        self.layout = layout
        self.variableColumns = variableColumns
    }

    deinit {
        for index in variableColumns {
            binds[index].buffer?.deallocate()
        }
        binds.deallocate()
        lengths.deallocate()
        nulls.deallocate()
        errors.deallocate()
        scalars.deallocate()
        generation.deallocate()
    }

    /// After a successful `mysql_stmt_fetch`: fetches again every column whose
    /// value did not fit its buffer, into a grown buffer. Rebinds once at the
    /// end (rebinding resets libmariadb's per-column row pointers, so it must
    /// follow every `mysql_stmt_fetch_column` of the row).
    func completeTruncatedColumns(_ statement: UnsafeMutablePointer<MYSQL_STMT>) -> Bool {
        var grew = false
        for index in variableColumns where nulls[index] == 0 && lengths[index] > binds[index].buffer_length {
            let needed = Int(lengths[index])
            var capacity = Int(binds[index].buffer_length)
            while capacity < needed { capacity *= 2 }
            binds[index].buffer?.deallocate()
            binds[index].buffer = .allocate(byteCount: capacity, alignment: 8)
            binds[index].buffer_length = UInt(capacity)
            guard mysql_stmt_fetch_column(statement, binds + index, UInt32(index), 0) == 0 else { return false }
            grew = true
        }
        if grew {
            guard mysql_stmt_bind_result(statement, binds) == 0 else { return false }
        }
        return true
    }

    /// A variable-length buffer that grew past this for one large value is
    /// given back when the result is finished, so a cached statement does
    /// not pin it for the connection's lifetime.
    static let retainedVariableCapacity = 1 << 20

    /// Shrinks buffers that grew past ``retainedVariableCapacity``. Only
    /// between results: libmariadb's copy of the binds still points at the old
    /// buffers until the next `mysql_stmt_bind_result`, which every execution
    /// makes before fetching.
    func shrinkLargeBuffers() {
        for index in variableColumns where binds[index].buffer_length > UInt(Self.retainedVariableCapacity) {
            binds[index].buffer?.deallocate()
            binds[index].buffer = .allocate(byteCount: Self.initialVariableCapacity, alignment: 8)
            binds[index].buffer_length = UInt(Self.initialVariableCapacity)
        }
    }

    /// The bytes of a non-NULL text or binary column in the current row.
    @inline(__always)
    func variableBytes(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: binds[index].buffer, count: Int(lengths[index]))
    }

    /// The current row's value of column `index`, copied.
    func value(_ index: Int) -> SQLValue {
        if nulls[index] != 0 { return .null }
        switch kinds[index] {
        case .null: return .null
        case .int: return .int(Int64(bitPattern: scalars[index]))
        case .uint: return .uint(scalars[index])
        case .double: return .double(Double(bitPattern: scalars[index]))
        case .text: return .text(String(decoding: variableBytes(index), as: UTF8.self))
        case .bytes: return .bytes(Array(variableBytes(index)))
        }
    }

    // MARK: - Column metadata

    static func layout(of fields: UnsafeMutablePointer<MYSQL_FIELD>, count: Int) -> [ColumnLayout] {
        (0..<count).map { index in
            let field = fields[index]
            return ColumnLayout(
                type: field.type.rawValue,
                isUnsigned: field.flags & UInt32(UNSIGNED_FLAG) != 0,
                isBinary: field.charsetnr == binaryCharset)
        }
    }

    /// The `binary` character set: BLOB and VARBINARY columns, and numbers
    /// and dates, carry it.
    static let binaryCharset: UInt32 = 63

    static func kind(of field: MYSQL_FIELD) -> Kind {
        switch field.type {
        case MYSQL_TYPE_NULL:
            return .null
        case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_INT24, MYSQL_TYPE_LONG, MYSQL_TYPE_LONGLONG,
            MYSQL_TYPE_YEAR:
            return field.flags & UInt32(UNSIGNED_FLAG) != 0 ? .uint : .int
        case MYSQL_TYPE_FLOAT, MYSQL_TYPE_DOUBLE:
            return .double
        case MYSQL_TYPE_DECIMAL, MYSQL_TYPE_NEWDECIMAL, MYSQL_TYPE_DATE, MYSQL_TYPE_NEWDATE, MYSQL_TYPE_TIME,
            MYSQL_TYPE_DATETIME, MYSQL_TYPE_TIMESTAMP, MYSQL_TYPE_ENUM, MYSQL_TYPE_SET, MYSQL_TYPE_JSON:
            return .text
        case MYSQL_TYPE_BIT, MYSQL_TYPE_GEOMETRY:
            return .bytes
        default:
            // CHAR, VARCHAR, TEXT and BLOB types: binary when the charset is.
            return field.charsetnr == binaryCharset ? .bytes : .text
        }
    }

    private static func name(of field: MYSQL_FIELD) -> String {
        guard let name = field.name else { return "" }
        return name.withMemoryRebound(to: UInt8.self, capacity: Int(field.name_length)) {
            String(decoding: UnsafeBufferPointer(start: $0, count: Int(field.name_length)), as: UTF8.self)
        }
    }
}
