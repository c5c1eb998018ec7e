import MariaDBClient
import TestSupport
import Testing

@Suite("Values round-trip through prepared statements", .offCooperativePool)
struct RoundTripTests {
    static let createTable = """
        CREATE TABLE kinds (
            id INT PRIMARY KEY,
            i BIGINT NULL,
            u BIGINT UNSIGNED NULL,
            d DOUBLE NULL,
            t TEXT NULL,
            b LONGBLOB NULL,
            small TINYINT NULL,
            usmall SMALLINT UNSIGNED NULL,
            f FLOAT NULL
        )
        """

    @Test func everyValueKindRoundTrips() throws {
        try withTestDatabase { connection, _, _ in
            try connection.execute(Self.createTable)
            let insert = try connection.prepare("INSERT INTO kinds (id, i, u, d, t, b) VALUES (?, ?, ?, ?, ?, ?)")
            let blobWithNULs: [UInt8] = [0, 1, 0, 255, 0, 0x80, 0x7f, 0]
            let large = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }  // > initial 4 KiB buffer
            let text = "Zoë 🌍 — 日本語 \u{0}nul"
            let rows: [[SQLValue]] = [
                [1, .int(Int64.min), .uint(UInt64.max), .double(-2.5e-300), .text(text), .bytes(blobWithNULs)],
                [2, .int(Int64.max), .uint(0), .double(Double.greatestFiniteMagnitude), .text(""), .bytes([])],
                [3, .null, .null, .null, .null, .null],
                [4, .int(-1), .uint(UInt64(Int64.max) + 1), .double(3.141592653589793), .text("x"), .bytes(large)],
            ]
            for row in rows {
                let result = try insert.execute(row)
                #expect(result.affectedRows == 1)
            }

            let read = try connection.query("SELECT id, i, u, d, t, b FROM kinds ORDER BY id")
            #expect(read.count == 4)
            #expect(read.map(\.values) == rows, "values come back exactly, in kind and content")
            #expect(read[0].columnNames == ["id", "i", "u", "d", "t", "b"])

            // Typed accessors.
            #expect(read[0].int(1) == Int64.min)
            #expect(read[0].uint(2) == UInt64.max)
            #expect(read[0].double(3) == -2.5e-300)
            #expect(read[0].string(4) == text)
            #expect(read[0].bytes(5) == blobWithNULs)
            #expect(read[2].isNull(1) && read[2].int(1) == nil && read[2].string(4) == nil && read[2].bytes(5) == nil)
            #expect(read[3].bytes(5) == large)
            #expect(read[3]["u"] == .uint(9_223_372_036_854_775_808))
        }
    }

    @Test func largeBlobInTheFirstStreamedRowAndAfterwards() throws {
        // The first row of an unbuffered result is the case libmariadb's own
        // truncation reporting gets wrong; later rows reuse the grown buffer.
        try withTestDatabase { connection, _, _ in
            try connection.execute("CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB NULL)")
            let sizes = [1 << 20, 10, 0, 5000, 2 << 20, 4096, 4097]
            for (id, size) in sizes.enumerated() {
                let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 ^ id) }
                try connection.execute("INSERT INTO blobs VALUES (?, ?)", [SQLValue(id), .bytes(bytes)])
            }
            try connection.execute("INSERT INTO blobs VALUES (99, NULL)")
            // Twice: the second pass starts from buffers shrunk after the first.
            var seen = 0
            for _ in 0..<2 {
                try connection.forEachRow("SELECT id, b FROM blobs ORDER BY id") { row in
                    let id = Int(try #require(row.int(0)))
                    if id == 99 {
                        #expect(row.isNull(1))
                    } else {
                        let expected = (0..<sizes[id]).map { UInt8(truncatingIfNeeded: $0 ^ id) }
                        #expect(row.bytes(1) == expected, "row \(id)")
                        #expect(row.withUnsafeBytes(1) { $0.count } == sizes[id])
                    }
                    seen += 1
                }
            }
            #expect(seen == 2 * (sizes.count + 1))
        }
    }

    @Test func narrowIntegersFloatsDecimalsAndDatesDecode() throws {
        try withTestDatabase { connection, _, _ in
            try connection.execute(Self.createTable)
            try connection.execute(
                "INSERT INTO kinds (id, small, usmall, f) VALUES (?, ?, ?, ?)", [1, -128, .uint(65535), 0.5])
            let row = try #require(
                try connection.query(
                    """
                    SELECT small, usmall, f, CAST(12.50 AS DECIMAL(10,2)), CAST('2024-02-29 13:45:00.123' AS DATETIME(3)),
                           DATE('2024-02-29'), SUM(id), COUNT(*), NULL, CAST(? AS CHAR), ?
                    FROM kinds
                    """, [.text("échappé"), .int(-7)]
                ).first)
            #expect(row[0] == .int(-128))
            #expect(row[1] == .uint(65535))
            #expect(row.double(2) == 0.5)
            #expect(row[3] == .text("12.50"))
            #expect(row[4] == .text("2024-02-29 13:45:00.123"))
            #expect(row[5] == .text("2024-02-29"))
            #expect(row.int(6) == 1, "SUM() is DECIMAL; int() reads its text exactly")
            #expect(row[7] == .int(1))
            #expect(row[8] == .null)
            #expect(row.string(9) == "échappé")
            #expect(row.int(10) == -7, "SELECT ? takes its type from the bound parameter")
        }
    }

    @Test func statementCacheReusesOneStatementPerSQLText() throws {
        try withTestDatabase { connection, _, _ in
            try connection.execute("CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL)")
            let before = connection.cachedStatementCount
            let sql = "INSERT INTO counter (id, n) VALUES (?, ?)"
            let first = try connection.prepare(sql)
            for id in 1...50 {
                try connection.execute(sql, [SQLValue(id), SQLValue(id * 2)])
            }
            #expect(try connection.prepare(sql) === first, "the same Statement object comes back")
            #expect(connection.cachedStatementCount == before + 1)
            #expect(first.parameterCount == 2)

            let select = try connection.prepare("SELECT SUM(n), COUNT(*) FROM counter WHERE id <= ?")
            #expect(select.columnNames == ["SUM(n)", "COUNT(*)"])
            #expect(try select.query([10]).first?.int(0) == 110)
            #expect(try select.query([50]).first?.int(0) == 2550)
            #expect(connection.cachedStatementCount == before + 2)
        }
    }

    @Test func rowViewCopiesOutliveTheStream() throws {
        try withTestDatabase { connection, _, _ in
            try connection.execute("CREATE TABLE names (id INT PRIMARY KEY, name VARCHAR(50))")
            try connection.insert(BatchInsert(table: "names", columns: ["id", "name"]), rows: [[1, "ada"], [2, "bob"], [3, "cy"]])
            var copies: [Row] = []
            try connection.forEachRow("SELECT id, name FROM names ORDER BY id") { copies.append($0.copy()) }
            #expect(copies.map { $0.string(1) } == ["ada", "bob", "cy"])
            #expect(copies[2].columnNames == ["id", "name"])
        }
    }
}
