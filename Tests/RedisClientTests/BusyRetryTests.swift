import RedisClient
import Testing
import TestSupport

/// `BUSY` replies while a script runs: retried with bounded backoff by
/// `send`, returned as values when the attempts run out.
///
/// Three connections: `scripted` starts an endless script and does not read
/// its reply until the end; `observer` sees the server busy; `killer` sends
/// `SCRIPT KILL`. The steps follow observed events (a BUSY reply, a retry
/// about to sleep), never sleeps of the test's own.
@Suite("BUSY retry", .timeLimit(.minutes(1)), .offCooperativePool)
struct BusyRetryTests {
    @Test func retryOutlastsABusyScriptOnceItIsKilled() throws {
        // The server answers BUSY once a script has run for 50 ms (default 5 s).
        let server = try RedisServer(options: .init(config: ["busy-reply-threshold": "50"]))
        let scripted = try server.connect(readTimeout: .seconds(30))
        let killer = try server.connect()
        let observer = try server.connect(retry: .none)
        #expect(try observer.send(["SET", "k", "v"]) == .status("OK"))

        scripted.append(["EVAL", "while true do end", "0"])
        try scripted.flush()
        try poll(until: "the server to answer BUSY") {
            try observer.send(["PING"]).errorKind == "BUSY"
        }

        // Attempts run out: the BUSY reply comes back as a value.
        let bounded = try server.connect(retry: RedisRetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(2)))
        var boundedRetries: [RedisRetryEvent] = []
        bounded.retryObserver = { boundedRetries.append($0) }
        #expect(try bounded.send(["GET", "k"]).errorKind == "BUSY")
        #expect(boundedRetries.map(\.failedAttempt) == [1, 2])
        #expect(boundedRetries.map(\.delay) == [.milliseconds(1), .milliseconds(2)])
        let thrown = try #require(throws: RedisError.self) { try bounded.sendChecked(["GET", "k"]) }
        #expect(thrown.serverErrorKind == "BUSY")

        // With attempts to spare, the first retry kills the script, and the
        // next attempt gets the real answer.
        let patient = try server.connect(retry: RedisRetryPolicy(maxAttempts: 20, baseDelay: .milliseconds(10), maxDelay: .milliseconds(200)))
        var retries: [RedisRetryEvent] = []
        var killReply: RedisValue?
        patient.retryObserver = { event in
            retries.append(event)
            if killReply == nil { killReply = try? killer.send(["SCRIPT", "KILL"]) }
        }
        #expect(try patient.send(["GET", "k"]).string == "v")
        #expect(killReply == .status("OK"))
        #expect(retries.first?.errorKind == "BUSY")
        #expect(retries.first?.command == "GET")
        #expect(retries.first?.failedAttempt == 1)

        // The killed script's caller gets an error reply, on a healthy connection.
        #expect(try scripted.readReply().errorMessage?.contains("killed") == true)
        #expect(try scripted.send(["PING"]) == .status("PONG"))
    }
}
