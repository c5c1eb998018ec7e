import MariaDBClient
import TestSupport
import Testing

@Suite("Streaming large results", .offCooperativePool)
struct StreamingTests {
    /// The payload of row `id`: 200-299 bytes, a pattern that a shifted or
    /// truncated copy cannot match.
    static func payload(_ id: Int) -> [UInt8] {
        (0..<(200 + id % 100)).map { UInt8(truncatingIfNeeded: id &* 31 &+ $0) }
    }

    static func fill(_ connection: MariaDBConnection, rows: Int) throws {
        try connection.execute("CREATE TABLE snapshot (id INT PRIMARY KEY, member INT NOT NULL, payload BLOB NOT NULL)")
        let batch = BatchInsert(table: "snapshot", columns: ["id", "member", "payload"])
        try connection.transaction { connection in
            var values: [SQLValue] = []
            values.reserveCapacity(3000)
            for id in 0..<rows {
                values += [SQLValue(id), SQLValue(id &* 7 % 1000), .bytes(payload(id))]
                if values.count == 3000 || id == rows - 1 {
                    try connection.insert(batch, values: values)
                    values.removeAll(keepingCapacity: true)
                }
            }
        }
    }

    @Test func streamsOneHundredThousandRowsWithCorrectValues() throws {
        try withTestDatabase { connection, _, _ in
            let rows = 100_000
            try Self.fill(connection, rows: rows)
            var expectedID = 0
            var badRows = 0
            try connection.forEachRow("SELECT id, member, payload FROM snapshot WHERE id >= ? ORDER BY id", [0]) { row in
                let id = Int(row.int(0) ?? -1)
                let member = row.int(1)
                let payloadMatches = row.withUnsafeBytes(2) { bytes in
                    bytes.elementsEqual(Self.payload(expectedID))
                }
                if id != expectedID || member != Int64(expectedID &* 7 % 1000) || payloadMatches != true {
                    badRows += 1
                }
                expectedID += 1
            }
            #expect(expectedID == rows)
            #expect(badRows == 0)
        }
    }

    @Test func stoppingEarlyDrainsAndLeavesTheConnectionUsable() throws {
        struct Enough: Error {}
        try withTestDatabase { connection, _, _ in
            try Self.fill(connection, rows: 20_000)
            var seen = 0
            #expect(throws: Enough.self) {
                try connection.forEachRow("SELECT id, member, payload FROM snapshot ORDER BY id") { _ in
                    seen += 1
                    if seen == 10 { throw Enough() }
                }
            }
            #expect(seen == 10)
            // The rest of the result was read off the wire: the session is in sync.
            #expect(try connection.query("SELECT COUNT(*), MAX(id) FROM snapshot").first?.values == [20_000, 19_999])
            // And the same statement streams again from the start.
            var ids: [Int64] = []
            try connection.forEachRow("SELECT id, member, payload FROM snapshot ORDER BY id") { row in
                if ids.count < 3 { ids.append(row.int(0)!) }
            }
            #expect(ids == [0, 1, 2])
        }
    }

    @Test func queryAndForEachRowAgree() throws {
        try withTestDatabase { connection, _, _ in
            try Self.fill(connection, rows: 1_000)
            let sql = "SELECT id, member, payload FROM snapshot WHERE member < ? ORDER BY id"
            let buffered = try connection.query(sql, [500])
            var streamed: [Row] = []
            try connection.forEachRow(sql, [500]) { streamed.append($0.copy()) }
            #expect(buffered == streamed)
            #expect(buffered.count == (0..<1000).filter { $0 &* 7 % 1000 < 500 }.count)
        }
    }
}
