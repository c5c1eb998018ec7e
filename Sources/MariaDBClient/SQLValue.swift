/// One value bound to a statement parameter or read from a result column.
///
/// The cases mirror what the binary protocol carries without loss:
/// - `int` / `uint`: every integer column type (TINYINT … BIGINT, YEAR), signed
///   or UNSIGNED; BIGINT UNSIGNED values above `Int64.max` need `uint`.
/// - `double`: FLOAT and DOUBLE.
/// - `text`: character columns (CHAR, VARCHAR, TEXT, ENUM, SET, JSON), and the
///   types this module reads as their canonical text: DECIMAL (`"12.50"`),
///   DATE (`"2024-02-29"`), TIME, DATETIME and TIMESTAMP
///   (`"2024-02-29 13:45:00"`, with a fraction when the column has one).
///   Bind a date the same way, as text.
/// - `bytes`: binary columns (BINARY, VARBINARY, BLOB, BIT, GEOMETRY), any bytes
///   including NUL.
///
/// A value read from a row is a copy: it stays valid after the row buffers
/// are reused.
///
/// `description` names the kind and size but never the content, so a value
/// that reaches a log line does not leak member data; `debugDescription`
/// shows the content for debugging.
package enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case text(String)
    case bytes([UInt8])

    /// An integer of any width: `uint` only when it does not fit in `Int64`.
    package init<T: BinaryInteger>(_ value: T) {
        if let signed = Int64(exactly: value) {
            self = .int(signed)
        } else {
            self = .uint(UInt64(value))
        }
    }

    /// `null` for `nil`, otherwise the wrapped value.
    package init(_ value: SQLValue?) {
        self = value ?? .null
    }

    package var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension SQLValue: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral {
    package init(integerLiteral value: Int64) { self = .int(value) }
    package init(floatLiteral value: Double) { self = .double(value) }
    package init(stringLiteral value: String) { self = .text(value) }
}

extension SQLValue: CustomStringConvertible, CustomDebugStringConvertible {
    /// The kind and size, never the content (member data stays out of logs).
    package var description: String {
        switch self {
        case .null: "NULL"
        case .int: "int"
        case .uint: "uint"
        case .double: "double"
        case .text(let text): "text(\(text.utf8.count) bytes)"
        case .bytes(let bytes): "bytes(\(bytes.count))"
        }
    }

    /// The content, for debugging and test failure messages.
    package var debugDescription: String {
        switch self {
        case .null: ".null"
        case .int(let value): ".int(\(value))"
        case .uint(let value): ".uint(\(value))"
        case .double(let value): ".double(\(value))"
        case .text(let text): ".text(\(String(reflecting: text)))"
        case .bytes(let bytes): ".bytes(\(bytes.count) bytes: \(bytes.prefix(32).map { String($0, radix: 16) }.joined(separator: " "))\(bytes.count > 32 ? " …" : ""))"
        }
    }
}

// MARK: - Typed access

/// The conversions shared by ``Row`` and ``RowView``. `nil` means SQL NULL; a
/// value that cannot be represented as the requested type is a programming
/// error (the query and the decoding disagree about the schema), reported as a
/// precondition failure that names the column, never the value.
extension SQLValue {
    func int64(column: Int) -> Int64? {
        switch self {
        case .null: return nil
        case .int(let value): return value
        case .uint(let value):
            guard let value = Int64(exactly: value) else { mismatch(column, "an Int64 (unsigned value too large)") }
            return value
        case .text(let text):
            // DECIMAL results (SUM of integers, …) arrive as text.
            guard let value = Int64(text) else { mismatch(column, "an integer") }
            return value
        case .double, .bytes: mismatch(column, "an integer")
        }
    }

    func uint64(column: Int) -> UInt64? {
        switch self {
        case .null: return nil
        case .uint(let value): return value
        case .int(let value):
            guard let value = UInt64(exactly: value) else { mismatch(column, "a UInt64 (negative value)") }
            return value
        case .text(let text):
            guard let value = UInt64(text) else { mismatch(column, "an unsigned integer") }
            return value
        case .double, .bytes: mismatch(column, "an unsigned integer")
        }
    }

    func doubleValue(column: Int) -> Double? {
        switch self {
        case .null: return nil
        case .double(let value): return value
        case .int(let value): return Double(value)
        case .uint(let value): return Double(value)
        case .text(let text):
            guard let value = Double(text) else { mismatch(column, "a number") }
            return value
        case .bytes: mismatch(column, "a number")
        }
    }

    func stringValue(column: Int) -> String? {
        switch self {
        case .null: return nil
        case .text(let text): return text
        case .bytes(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .int(let value): return String(value)
        case .uint(let value): return String(value)
        case .double(let value): return String(value)
        }
    }

    func bytesValue(column: Int) -> [UInt8]? {
        switch self {
        case .null: return nil
        case .bytes(let bytes): return bytes
        case .text(let text): return Array(text.utf8)
        case .int, .uint, .double: mismatch(column, "bytes")
        }
    }

    private func mismatch(_ column: Int, _ wanted: String) -> Never {
        preconditionFailure("MariaDBClient: column \(column) holds \(description), which cannot be read as \(wanted)")
    }
}
