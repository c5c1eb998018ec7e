/// The row being streamed by ``Statement/forEachRow(_:_:)``, read in place
/// from the connection's fetch buffers.
///
/// A view is valid only inside the `forEachRow` callback that received it:
/// the next fetch overwrites the buffers. Using it afterwards is a
/// precondition failure (checked with one integer comparison per access), not
/// silent garbage. Call ``copy()`` to keep a row.
///
/// Cost: `isNull`, `int`, `uint` and `double` read a fixed slot and allocate
/// nothing; `string` and `bytes` allocate the returned value;
/// ``withUnsafeBytes(_:_:)`` reads text or binary data without copying.
///
/// Typed accessors follow the same rules as ``Row``: `nil` for SQL NULL,
/// exact conversions only, a precondition failure otherwise.
package struct RowView {
    let bindings: ResultBindings
    let generation: UInt64

    init(bindings: ResultBindings, generation: UInt64) {
        self.bindings = bindings
        self.generation = generation
    }

    /// The number of columns.
    package var count: Int { bindings.count }

    /// The column names, in column order.
    package var columnNames: [String] { bindings.names }

    package func isNull(_ index: Int) -> Bool {
        check(index)
        return bindings.nulls[index] != 0
    }

    /// The column as a signed integer; `nil` for NULL.
    package func int(_ index: Int) -> Int64? {
        check(index)
        if bindings.nulls[index] != 0 { return nil }
        switch bindings.kinds[index] {
        case .int: return Int64(bitPattern: bindings.scalars[index])
        default: return bindings.value(index).int64(column: index)
        }
    }

    /// The column as an unsigned integer; `nil` for NULL.
    package func uint(_ index: Int) -> UInt64? {
        check(index)
        if bindings.nulls[index] != 0 { return nil }
        switch bindings.kinds[index] {
        case .uint: return bindings.scalars[index]
        default: return bindings.value(index).uint64(column: index)
        }
    }

    /// The column as a double; `nil` for NULL.
    package func double(_ index: Int) -> Double? {
        check(index)
        if bindings.nulls[index] != 0 { return nil }
        switch bindings.kinds[index] {
        case .double: return Double(bitPattern: bindings.scalars[index])
        default: return bindings.value(index).doubleValue(column: index)
        }
    }

    /// The column as text (binary columns are decoded as UTF-8, invalid
    /// sequences repaired); `nil` for NULL.
    package func string(_ index: Int) -> String? {
        check(index)
        if bindings.nulls[index] != 0 { return nil }
        switch bindings.kinds[index] {
        case .text, .bytes: return String(decoding: bindings.variableBytes(index), as: UTF8.self)
        default: return bindings.value(index).stringValue(column: index)
        }
    }

    /// The column's bytes, copied; `nil` for NULL.
    package func bytes(_ index: Int) -> [UInt8]? {
        check(index)
        if bindings.nulls[index] != 0 { return nil }
        switch bindings.kinds[index] {
        case .text, .bytes: return Array(bindings.variableBytes(index))
        default: return bindings.value(index).bytesValue(column: index)
        }
    }

    /// Calls `body` with the bytes of a text or binary column, without
    /// copying; `nil` (and `body` is not called) for NULL. The buffer is valid
    /// only inside `body`. A numeric column is a precondition failure.
    package func withUnsafeBytes<Result>(
        _ index: Int, _ body: (UnsafeRawBufferPointer) throws -> Result
    ) rethrows -> Result? {
        check(index)
        if bindings.nulls[index] != 0 { return nil }
        switch bindings.kinds[index] {
        case .text, .bytes: return try body(bindings.variableBytes(index))
        default: preconditionFailure("MariaDBClient: column \(index) is not a text or binary column")
        }
    }

    /// The value of column `index`, copied.
    package subscript(index: Int) -> SQLValue {
        check(index)
        return bindings.value(index)
    }

    /// An owned copy of the row.
    package func copy() -> Row {
        precondition(bindings.generation.pointee == generation, Self.staleMessage)
        return Row(values: (0..<bindings.count).map(bindings.value), columnNames: bindings.names)
    }

    @inline(__always)
    private func check(_ index: Int) {
        precondition(bindings.generation.pointee == generation, Self.staleMessage)
        precondition(index >= 0 && index < bindings.count, "MariaDBClient: column index out of range")
    }

    private static let staleMessage = "MariaDBClient: a RowView was used after its forEachRow callback returned"
}

@available(*, unavailable, message: "a RowView reads buffers owned by one connection")
extension RowView: Sendable {}
