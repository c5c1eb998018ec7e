/// A multi-row `INSERT … VALUES (?, ?), (?, ?), …` run as few prepared
/// statements as possible.
///
/// One multi-row statement costs one round trip and one commit, where the
/// same rows inserted one by one cost one each. Measured here (1000 rows of
/// INT, INT, 300-byte BLOB, release build, loopback): one statement 3-5 ms;
/// 1000 prepared single-row INSERTs ~30 ms inside one transaction and
/// ~0.2-1 s with autocommit (a log flush per row, so it varies with disk load).
///
/// Rows are sent in statements of `maxRowsPerStatement` rows; the remainder
/// is split into power-of-two row counts (700 rows with a maximum of 1000 →
/// 512 + 128 + 32 + 16 + 8 + 4), so a connection caches at most
/// log2(maxRowsPerStatement) + 2 statements per batch shape instead of one per
/// remainder size, at the price of a few extra round trips for the tail.
///
/// The statements are not atomic together: wrap the call in
/// ``MariaDBConnection/transaction(_:)`` when all rows must land or none.
package struct BatchInsert: Sendable, Hashable {
    /// Everything before the first row's parentheses, e.g.
    /// `INSERT INTO answers (member_id, question_id, answer) VALUES`.
    package let prefix: String
    /// The number of `?` in one row.
    package let columnsPerRow: Int
    /// Everything after the last row, e.g. ` ON DUPLICATE KEY UPDATE answer = VALUES(answer)`.
    package let suffix: String
    /// The most rows one statement carries.
    package let maxRowsPerStatement: Int

    /// The protocol numbers parameters with 16 bits.
    package static let maxParametersPerStatement = 65535

    package init(_ prefix: String, columnsPerRow: Int, suffix: String = "", maxRowsPerStatement: Int = 1000) {
        precondition(columnsPerRow > 0, "BatchInsert needs at least one column")
        precondition(maxRowsPerStatement > 0, "BatchInsert needs at least one row per statement")
        precondition(
            columnsPerRow * maxRowsPerStatement <= Self.maxParametersPerStatement,
            "BatchInsert: \(columnsPerRow) columns × \(maxRowsPerStatement) rows exceeds 65535 parameters")
        self.prefix = prefix
        self.columnsPerRow = columnsPerRow
        self.suffix = suffix
        self.maxRowsPerStatement = maxRowsPerStatement
    }

    /// `INSERT INTO `table` (`a`, `b`) VALUES`, identifiers quoted with backticks.
    package init(table: String, columns: [String], suffix: String = "", maxRowsPerStatement: Int = 1000) {
        let quotedColumns = columns.map(Self.quoteIdentifier).joined(separator: ", ")
        self.init(
            "INSERT INTO \(Self.quoteIdentifier(table)) (\(quotedColumns)) VALUES",
            columnsPerRow: columns.count, suffix: suffix, maxRowsPerStatement: maxRowsPerStatement)
    }

    /// The SQL for `rows` rows.
    package func sql(rows: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columnsPerRow).joined(separator: ",") + ")"
        return prefix + " " + Array(repeating: row, count: rows).joined(separator: ",") + suffix
    }

    /// The row count of each statement for `rows` rows, in order.
    package func statementSizes(rows: Int) -> [Int] {
        var sizes = Array(repeating: maxRowsPerStatement, count: rows / maxRowsPerStatement)
        var remainder = rows % maxRowsPerStatement
        while remainder > 0 {
            let size = 1 << (Int.bitWidth - 1 - remainder.leadingZeroBitCount)  // largest power of two ≤ remainder
            sizes.append(size)
            remainder -= size
        }
        return sizes
    }

    private static func quoteIdentifier(_ name: String) -> String {
        "`" + name.replacingBackticks() + "`"
    }
}

extension String {
    fileprivate func replacingBackticks() -> String {
        var result = ""
        for character in self {
            result.append(character)
            if character == "`" { result.append("`") }
        }
        return result
    }
}

extension MariaDBConnection {
    /// Inserts `values`, laid out row after row (`columnsPerRow` values per
    /// row), with as few statements as ``BatchInsert`` allows.
    ///
    /// Returns the summed affected rows and the `lastInsertID` of the first
    /// statement (the first AUTO_INCREMENT value generated), as one multi-row
    /// INSERT would.
    @discardableResult
    package func insert(_ batch: BatchInsert, values: [SQLValue]) throws -> ExecutionResult {
        precondition(
            values.count % batch.columnsPerRow == 0,
            "BatchInsert: \(values.count) values do not make whole rows of \(batch.columnsPerRow)")
        var total = ExecutionResult(affectedRows: 0, lastInsertID: 0)
        var start = values.startIndex
        for (index, rows) in batch.statementSizes(rows: values.count / batch.columnsPerRow).enumerated() {
            let end = start + rows * batch.columnsPerRow
            let result = try prepare(batch.sql(rows: rows)).execute(parameters: values[start..<end])
            total.affectedRows += result.affectedRows
            if index == 0 { total.lastInsertID = result.lastInsertID }
            start = end
        }
        return total
    }

    /// Inserts `rows`, each with `columnsPerRow` values.
    @discardableResult
    package func insert(_ batch: BatchInsert, rows: [[SQLValue]]) throws -> ExecutionResult {
        try insert(batch, values: rows.flatMap { row in
            precondition(row.count == batch.columnsPerRow, "BatchInsert: a row has \(row.count) values, not \(batch.columnsPerRow)")
            return row
        })
    }
}
