/// One result row, copied out of the connection's buffers.
///
/// A `Row` owns its values and is `Sendable`: keep it, pass it between tasks.
/// ``Statement/query(_:)`` returns rows; ``RowView/copy()`` makes one from the
/// row being streamed.
///
/// Typed accessors return `nil` for SQL NULL and convert where the conversion
/// is exact (an `int` read with `uint(_:)` when not negative, DECIMAL text read
/// with `int(_:)`). Anything else, or an index out of range, is a
/// precondition failure: the query and the decoding disagree about the schema.
package struct Row: Sendable, Hashable, CustomStringConvertible {
    /// The values, in column order.
    package let values: [SQLValue]
    /// The column names (the `AS` alias when there is one), in column order.
    package let columnNames: [String]

    package init(values: [SQLValue], columnNames: [String]) {
        precondition(values.count == columnNames.count, "MariaDBClient: a row needs one name per value")
        self.values = values
        self.columnNames = columnNames
    }

    /// The number of columns.
    package var count: Int { values.count }

    /// The value of column `index`.
    package subscript(index: Int) -> SQLValue { values[index] }

    /// The value of the first column named `name`, or `nil` when there is none.
    package subscript(name: String) -> SQLValue? {
        columnNames.firstIndex(of: name).map { values[$0] }
    }

    package func isNull(_ index: Int) -> Bool { values[index].isNull }
    package func int(_ index: Int) -> Int64? { values[index].int64(column: index) }
    package func uint(_ index: Int) -> UInt64? { values[index].uint64(column: index) }
    package func double(_ index: Int) -> Double? { values[index].doubleValue(column: index) }
    package func string(_ index: Int) -> String? { values[index].stringValue(column: index) }
    package func bytes(_ index: Int) -> [UInt8]? { values[index].bytesValue(column: index) }

    /// Column names and value kinds, never the values.
    package var description: String {
        "Row(" + zip(columnNames, values).map { "\($0): \($1)" }.joined(separator: ", ") + ")"
    }
}
