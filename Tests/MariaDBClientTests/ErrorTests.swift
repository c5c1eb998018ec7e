import Dispatch
import Foundation
import MariaDBClient
import Synchronization
import TestSupport
import Testing

@Suite("Server errors", .offCooperativePool)
struct ErrorTests {
    /// Every text form of `error` that could reach a log.
    static func renderings(of error: MariaDBError) -> [String] {
        var dumped = ""
        dump(error, to: &dumped)
        return [error.description, error.message, String(reflecting: error), "\(error)", dumped]
    }

    @Test func duplicateKeyIsRecognisedAndTheValueNeverAppears() throws {
        try withTestDatabase { connection, _, _ in
            try connection.execute("CREATE TABLE members (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100) NOT NULL, UNIQUE KEY email_unique (email))")
            let insert = "INSERT INTO members (email) VALUES (?)"
            try connection.execute(insert, [.text(secretMemberData)])
            let error = try #require(throws: MariaDBError.self) {
                try connection.execute(insert, [.text(secretMemberData)])
            }
            #expect(error.isDuplicateKey)
            #expect(error.code == .duplicateKey)
            #expect(error.errorNumber == 1062)
            #expect(error.sqlState == "23000")
            #expect(!error.isConnectionLost && !error.isRetryableTransactionFailure)
            #expect(error.message.contains("email_unique"), "the key name is kept: it says which constraint failed")
            #expect(error.sql == insert)
            for text in Self.renderings(of: error) {
                #expect(!text.contains(secretMemberData), "leaked in: \(text)")
                #expect(!text.contains("secret-member"), "partly leaked in: \(text)")
            }
            // The statement stays usable after a server error.
            try connection.execute(insert, [.text("another@example.invalid")])
        }
    }

    @Test func invalidValueErrorsAreRedacted() throws {
        try withTestDatabase { connection, _, _ in
            try connection.execute("CREATE TABLE typed (n INT NOT NULL, d DATE NULL)")
            let integerError = try #require(throws: MariaDBError.self) {
                try connection.execute("INSERT INTO typed (n) VALUES (?)", [.text(secretMemberData)])
            }
            #expect(integerError.errorNumber == 1366)
            let dateError = try #require(throws: MariaDBError.self) {
                try connection.execute("INSERT INTO typed (n, d) VALUES (1, ?)", [.text(secretMemberData)])
            }
            #expect([1292, 1366].contains(dateError.errorNumber))
            for text in Self.renderings(of: integerError) + Self.renderings(of: dateError) {
                #expect(!text.contains("secret-member"), "leaked in: \(text)")
            }
        }
    }

    @Test func syntaxErrorsCarryThePlaceholderSQLOnly() throws {
        try withTestDatabase { connection, _, _ in
            let error = try #require(throws: MariaDBError.self) {
                try connection.prepare("SELEC ? FROM nowhere")
            }
            #expect(error.errorNumber == 1064)
            #expect(error.operation == "prepare")
            #expect(error.description.contains("SELEC ? FROM nowhere"))
            #expect(connection.cachedStatementCount == 0, "a failed prepare is not cached")
        }
    }

    @Test func lockWaitTimeoutIsRecognised() throws {
        try withTestDatabase { holder, server, database in
            try holder.execute("CREATE TABLE locks (id INT PRIMARY KEY, n INT NOT NULL)")
            try holder.execute("INSERT INTO locks VALUES (1, 0)")
            try holder.begin()
            try holder.execute("UPDATE locks SET n = n + 1 WHERE id = ?", [1])

            let waiter = try server.connect(database: database)
            defer { waiter.close() }
            try waiter.execute("SET SESSION innodb_lock_wait_timeout = 1")
            let error = try #require(throws: MariaDBError.self) {
                try waiter.execute("UPDATE locks SET n = n + 10 WHERE id = ?", [1])
            }
            #expect(error.isLockWaitTimeout)
            #expect(error.errorNumber == 1205)
            #expect(error.isRetryableTransactionFailure)
            try holder.rollback()
            try waiter.execute("UPDATE locks SET n = n + 10 WHERE id = ?", [1])  // free now
        }
    }

    /// What the deadlock test's second session reports from its thread.
    struct SessionReport: Sendable {
        var connectionID: UInt64 = 0
        var databaseError: MariaDBError?
        var otherError: String?
        var phase = "starting"
    }

    /// Two sessions lock rows 1 and 2 and then each other's row: InnoDB picks
    /// one as the deadlock victim. The second session runs on its own thread
    /// (a blocked session blocks its thread); the test moves on only on
    /// observed events (row locked, session waiting, thread finished), each
    /// wait bounded.
    @Test func deadlockIsRecognised() throws {
        try withTestDatabase { sessionA, server, database in
            try sessionA.execute("CREATE TABLE locks (id INT PRIMARY KEY, n INT NOT NULL)")
            try sessionA.execute("INSERT INTO locks VALUES (1, 0), (2, 0)")
            try sessionA.begin()
            try sessionA.execute("UPDATE locks SET n = n + 1 WHERE id = ?", [1])

            let configuration = server.configuration(database: database)
            let report = Mutex(SessionReport())
            let rowTwoLocked = DispatchSemaphore(value: 0)
            let finished = DispatchSemaphore(value: 0)
            Thread {
                defer {
                    rowTwoLocked.signal()  // also when B failed before locking
                    finished.signal()
                }
                do {
                    let sessionB = try MariaDBConnection(configuration: configuration)
                    defer { sessionB.close() }
                    report.withLock { $0.connectionID = sessionB.connectionID }
                    try sessionB.begin()
                    try sessionB.execute("UPDATE locks SET n = n + 1 WHERE id = ?", [2])
                    rowTwoLocked.signal()
                    report.withLock { $0.phase = "locking row 1" }
                    try sessionB.execute("UPDATE locks SET n = n + 1 WHERE id = ?", [1])  // waits for A
                    report.withLock { $0.phase = "locked row 1" }
                    try sessionB.commit()
                } catch let error as MariaDBError {
                    report.withLock { $0.databaseError = error }
                } catch {
                    report.withLock { $0.otherError = "\(error)" }
                }
            }.start()
            try #require(rowTwoLocked.wait(timeout: .now() + 20) == .success, "session B locked row 2")

            let observer = try server.connect(database: database)
            defer { observer.close() }
            let sessionBID = report.withLock { $0.connectionID }
            do {
                // INNODB_TRX is served from a cache that InnoDB refreshes only
                // when it was last read over 100 ms ago: polling faster than
                // that would read the same stale snapshot forever.
                try poll(until: "session B to wait for row 1", timeout: .seconds(20), interval: .milliseconds(150)) {
                    try observer.query(
                        "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = ? AND trx_state = 'LOCK WAIT'",
                        [.uint(sessionBID)]
                    ).first?.int(0) == 1
                }
            } catch {
                let transactions = try observer.query(
                    "SELECT trx_mysql_thread_id, trx_state, trx_query, trx_started, trx_rows_locked FROM information_schema.INNODB_TRX")
                    + observer.query("SELECT ID, DB, COMMAND, STATE, INFO, TIME_MS FROM information_schema.PROCESSLIST")
                Issue.record("session B: \(report.withLock { $0 }); transactions: \(transactions.map { $0.values.debugDescription })")
                throw error
            }

            var sessionAError: MariaDBError?
            do {
                try sessionA.execute("UPDATE locks SET n = n + 1 WHERE id = ?", [2])  // closes the cycle
                try sessionA.commit()
            } catch let error as MariaDBError {
                sessionAError = error
                try? sessionA.rollback()
            }
            try #require(finished.wait(timeout: .now() + 30) == .success, "session B finished")

            let sessionB = report.withLock { $0 }
            #expect(sessionB.otherError == nil)
            let victims = [sessionAError, sessionB.databaseError].compactMap { $0 }
            #expect(victims.count == 1, "exactly one session is the victim: \(victims)")
            let victim = try #require(victims.first)
            #expect(victim.isDeadlock)
            #expect(victim.errorNumber == 1213)
            #expect(victim.sqlState == "40001")
            #expect(victim.isRetryableTransactionFailure)
        }
    }
}
