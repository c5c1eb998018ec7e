import MariaDBClient
import TestSupport
import Testing

@Suite("Multi-row INSERT", .offCooperativePool)
struct BatchInsertTests {
    @Test func insertsEveryRowWithFewCachedStatements() throws {
        try withTestDatabase { connection, _, _ in
            try connection.execute(
                "CREATE TABLE answers (id BIGINT AUTO_INCREMENT PRIMARY KEY, member INT NOT NULL, question INT NOT NULL, answer VARBINARY(16))")
            let batch = BatchInsert(table: "answers", columns: ["member", "question", "answer"])
            let rowCount = 2700
            var values: [SQLValue] = []
            for index in 0..<rowCount {
                values += [SQLValue(index / 100), SQLValue(index % 100), .bytes([UInt8(index % 256), 0, 1])]
            }
            let statementsBefore = connection.cachedStatementCount
            let result = try connection.insert(batch, values: values)
            #expect(result.affectedRows == UInt64(rowCount))
            #expect(result.lastInsertID == 1, "the first generated id, as one multi-row INSERT reports it")
            let sizes = Set(batch.statementSizes(rows: rowCount))
            #expect(connection.cachedStatementCount == statementsBefore + sizes.count)

            // A second batch of the same shape prepares nothing new.
            try connection.insert(batch, values: values)
            #expect(connection.cachedStatementCount == statementsBefore + sizes.count)

            let summary = try #require(
                try connection.query("SELECT COUNT(*), SUM(member), SUM(question), MAX(id) FROM answers").first)
            #expect(summary.int(0) == Int64(2 * rowCount))
            #expect(summary.int(1) == Int64(2 * (0..<rowCount).reduce(0) { $0 + $1 / 100 }))
            #expect(summary.int(2) == Int64(2 * (0..<rowCount).reduce(0) { $0 + $1 % 100 }))
            #expect(summary.int(3) == Int64(2 * rowCount))

            // Row order and content survive the split into statements.
            let sample = try connection.query(
                "SELECT member, question, answer FROM answers WHERE id IN (?, ?, ?) ORDER BY id", [1, 2001, 2700])
            let expected: [[SQLValue]] = [0, 2000, 2699].map { (index: Int) -> [SQLValue] in
                [SQLValue(index / 100), SQLValue(index % 100), SQLValue.bytes([UInt8(index % 256), 0, 1])]
            }
            #expect(sample.map(\.values) == expected)
        }
    }

    @Test func upsertSuffixAndRowsForm() throws {
        try withTestDatabase { connection, _, _ in
            try connection.execute("CREATE TABLE scores (member INT, other INT, score DOUBLE, PRIMARY KEY (member, other))")
            let batch = BatchInsert(
                table: "scores", columns: ["member", "other", "score"],
                suffix: " ON DUPLICATE KEY UPDATE score = VALUES(score)", maxRowsPerStatement: 4)
            try connection.insert(batch, rows: (0..<10).map { [1, SQLValue($0), .double(Double($0))] })
            try connection.insert(batch, rows: (0..<10).map { [1, SQLValue($0), .double(Double($0) + 0.5)] })
            let rows = try connection.query("SELECT COUNT(*), SUM(score) FROM scores")
            #expect(rows.first?.int(0) == 10)
            #expect(rows.first?.double(1) == 50)
        }
    }
}
