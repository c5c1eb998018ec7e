import MariaDBClient
import TestSupport
import Testing

/// Failure tests: each starts its own server, because they kill, pause and
/// restart it.
@Suite("Lost connections and reconnecting", .offCooperativePool)
struct ReconnectTests {
    @Test func killedServerIsDetectedPromptlyAndReconnectRestoresCachedStatements() throws {
        let server = try MariaDBServer.start()
        let database = try server.createDatabase()
        // A long read timeout: detection must come from the closed socket, not the timer.
        let connection = try server.connect(database: database, readTimeout: .seconds(30))
        defer { connection.close() }
        try connection.execute("CREATE TABLE members (id INT PRIMARY KEY, name VARCHAR(40))")
        try connection.insert(BatchInsert(table: "members", columns: ["id", "name"]), rows: [[1, "ada"], [2, "bob"]])
        let select = try connection.prepare("SELECT name FROM members WHERE id = ?")
        #expect(try select.query([1]).first?.string(0) == "ada")
        let cached = connection.cachedStatementCount

        server.kill()

        let clock = ContinuousClock()
        let started = clock.now
        let lost = try #require(throws: MariaDBError.self) { try select.query([1]) }
        #expect(lost.isConnectionLost, "\(lost)")
        #expect([2006, 2013].contains(lost.errorNumber))
        #expect(clock.now - started < .seconds(5), "detected from the socket, not after the 30 s read timeout")
        let stillLost = try #require(throws: MariaDBError.self) { try connection.execute("SELECT 1") }
        #expect(stillLost.isConnectionLost)

        // Reconnecting while the server is down fails fast, and leaves the
        // connection usable for another attempt.
        let refused = try #require(throws: MariaDBError.self) { try connection.reconnect() }
        #expect(refused.isConnectionLost)
        let notConnected = try #require(throws: MariaDBError.self) { try select.query([1]) }
        #expect(notConnected.isConnectionLost)

        try server.restart()
        try connection.reconnect()
        #expect(connection.cachedStatementCount == cached)
        #expect(try select.query([2]).first?.string(0) == "bob", "the cached statement was prepared again")
        #expect(try connection.prepare("SELECT name FROM members WHERE id = ?") === select)
        try connection.execute("INSERT INTO members VALUES (?, ?)", [3, "cy"])
        #expect(try connection.query("SELECT COUNT(*) FROM members").first?.int(0) == 3, "data survived the restart")
    }

    @Test func hungServerHitsTheReadTimeout() throws {
        let server = try MariaDBServer.start()
        defer { try? server.resume() }
        let database = try server.createDatabase()
        let connection = try server.connect(database: database, readTimeout: .seconds(2))
        defer { connection.close() }
        let statement = try connection.prepare("SELECT ? + 1")
        #expect(try statement.query([41]).first?.int(0) == 42)

        try server.pause()
        let clock = ContinuousClock()
        let started = clock.now
        let error = try #require(throws: MariaDBError.self) { try statement.query([1]) }
        let waited = clock.now - started
        #expect(error.isConnectionLost, "\(error)")
        #expect(error.errorNumber == 2013)
        #expect(waited >= .milliseconds(1500), "waited for the read timeout: \(waited)")
        #expect(waited < .seconds(10), "and no longer than it: \(waited)")

        try server.resume()
        try connection.reconnect()
        #expect(try statement.query([1]).first?.int(0) == 2)
    }

    @Test func serverKilledMidStreamEndsTheStreamWithConnectionLost() throws {
        let server = try MariaDBServer.start()
        let database = try server.createDatabase()
        let connection = try server.connect(database: database, readTimeout: .seconds(30))
        defer { connection.close() }
        try StreamingTests.fill(connection, rows: 50_000)

        var seen = 0
        let error = try #require(throws: MariaDBError.self) {
            try connection.forEachRow("SELECT id, member, payload FROM snapshot ORDER BY id") { _ in
                seen += 1
                if seen == 1 { server.kill() }
            }
        }
        #expect(error.isConnectionLost, "\(error)")
        #expect(seen >= 1 && seen < 50_000, "rows already in socket buffers were delivered, then the loss surfaced")

        try server.restart()
        try connection.reconnect()
        #expect(try connection.query("SELECT COUNT(*) FROM snapshot").first?.int(0) == 50_000)
    }

    @Test func cleanShutdownIsALostConnectionAndRestartKeepsData() throws {
        let server = try MariaDBServer.start()
        let database = try server.createDatabase()
        let connection = try server.connect(database: database)
        defer { connection.close() }
        try connection.execute("CREATE TABLE kept (id INT PRIMARY KEY)")
        try connection.execute("INSERT INTO kept VALUES (?)", [7])
        let statement = try connection.prepare("SELECT id * 2 FROM kept WHERE id = ?")
        #expect(try statement.query([7]).first?.int(0) == 14)

        server.stop()
        #expect(server.pid == nil, "stop() returns once mariadbd has exited")
        let error = try #require(throws: MariaDBError.self) { try statement.query([7]) }
        #expect(error.isConnectionLost, "\(error)")

        try server.restart()
        try connection.reconnect()
        #expect(try statement.query([7]).first?.int(0) == 14)
    }
}
