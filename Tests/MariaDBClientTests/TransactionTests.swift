import MariaDBClient
import TestSupport
import Testing

@Suite("Transactions", .offCooperativePool)
struct TransactionTests {
    struct BodyFailed: Error, Equatable { let step: Int }

    @Test func commitMakesRowsVisibleToOtherSessions() throws {
        try withTestDatabase { connection, server, database in
            try connection.execute("CREATE TABLE members (id INT PRIMARY KEY, name VARCHAR(40))")
            let returned = try connection.transaction { connection in
                try connection.execute("INSERT INTO members VALUES (?, ?)", [1, "ada"])
                try connection.execute("INSERT INTO members VALUES (?, ?)", [2, "bob"])
                return "done"
            }
            #expect(returned == "done")
            let other = try server.connect(database: database)
            defer { other.close() }
            #expect(try other.query("SELECT COUNT(*) FROM members").first?.int(0) == 2)
        }
    }

    @Test func thrownErrorRollsBackAndIsRethrown() throws {
        try withTestDatabase { connection, server, database in
            try connection.execute("CREATE TABLE members (id INT PRIMARY KEY, name VARCHAR(40))")
            try connection.execute("INSERT INTO members VALUES (?, ?)", [1, "kept"])
            #expect(throws: BodyFailed(step: 2)) {
                try connection.transaction { connection in
                    try connection.execute("INSERT INTO members VALUES (?, ?)", [2, "rolled back"])
                    try connection.execute("UPDATE members SET name = ? WHERE id = ?", ["changed", 1])
                    throw BodyFailed(step: 2)
                }
            }
            #expect(try connection.query("SELECT id, name FROM members ORDER BY id").map(\.values) == [[1, "kept"]])
            let other = try server.connect(database: database)
            defer { other.close() }
            #expect(try other.query("SELECT COUNT(*) FROM members").first?.int(0) == 1)

            // The connection is back in autocommit mode: a plain insert is durable.
            try connection.execute("INSERT INTO members VALUES (?, ?)", [3, "autocommitted"])
            #expect(try other.query("SELECT COUNT(*) FROM members").first?.int(0) == 2)
        }
    }

    @Test func databaseErrorInsideRollsBackEarlierStatements() throws {
        try withTestDatabase { connection, _, _ in
            try connection.execute("CREATE TABLE members (id INT PRIMARY KEY)")
            try connection.execute("INSERT INTO members VALUES (?)", [1])
            let error = try #require(throws: MariaDBError.self) {
                try connection.transaction { connection in
                    try connection.execute("INSERT INTO members VALUES (?)", [2])
                    try connection.execute("INSERT INTO members VALUES (?)", [1])  // duplicate
                }
            }
            #expect(error.isDuplicateKey)
            #expect(try connection.query("SELECT COUNT(*) FROM members").first?.int(0) == 1)
        }
    }

    @Test func explicitBeginAndRollback() throws {
        try withTestDatabase { connection, _, _ in
            try connection.execute("CREATE TABLE t (id INT PRIMARY KEY)")
            try connection.begin()
            try connection.execute("INSERT INTO t VALUES (?)", [1])
            #expect(try connection.query("SELECT COUNT(*) FROM t").first?.int(0) == 1)
            try connection.rollback()
            #expect(try connection.query("SELECT COUNT(*) FROM t").first?.int(0) == 0)
            try connection.begin()
            try connection.execute("INSERT INTO t VALUES (?)", [2])
            try connection.commit()
            #expect(try connection.query("SELECT id FROM t").map { $0.int(0) } == [2])
        }
    }
}
