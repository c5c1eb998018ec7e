import Foundation
@testable import RedisClient
import Testing
import TestSupport

/// Servers that are absent, killed, restarted or slow. Every wait is bounded:
/// by the connection's read timeout, a poll's timeout, or a thread's join
/// timeout; the suite's time limit catches anything else.
@Suite("Connection failures", .timeLimit(.minutes(1)), .offCooperativePool)
struct ConnectionFailureTests {
    @Test func connectingToAClosedPortFailsWithAClearError() throws {
        let port = try freeLoopbackPort()  // nothing listens there
        let error = try #require(throws: RedisError.self) {
            _ = try RedisConnection(host: "127.0.0.1", port: Int(port))
        }
        #expect(error.code == .connectionFailed)
        #expect(!error.isConnectionBroken)
        #expect(error.context == "127.0.0.1:\(port)")
        #expect(error.message.contains("Connection refused"))
    }

    @Test func connectingToAServerThatNeverAnswersStopsAtTheConnectTimeout() throws {
        // A listener whose accept queue is full drops new SYNs: the handshake
        // never completes, as with a host that vanished.
        let listener = LoopbackListener(backlog: 0)
        var fillers: [RedisConnection] = []
        var error: RedisError?
        for _ in 0..<8 {  // the queue holds one or two, depending on the kernel
            let configuration = RedisConnection.Configuration(
                host: "127.0.0.1", port: listener.port, connectTimeout: .milliseconds(200))
            do {
                fillers.append(try RedisConnection(configuration: configuration))
            } catch let failure {
                error = failure
                break
            }
        }
        let failure = try #require(error)
        #expect(failure.code == .connectionFailed)
        #expect(failure.message.contains("timed out"))
        #expect(fillers.count < 8)
        close(listener.socket)
    }

    @Test func killedBeforeAPipelineEveryCommandGetsABrokenConnectionError() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        #expect(try redis.send(["PING"]) == .status("PONG"))
        server.kill()

        let results = redis.pipeline([["SET", "a", "1"], ["INCR", "n"], ["GET", "a"]])
        #expect(results.count == 3)
        for result in results {
            let error = try #require(throws: RedisError.self) { try result.get() }
            #expect(error.isConnectionBroken)
            #expect(error.context == "127.0.0.1:\(server.port)")
        }
        #expect(redis.isBroken)
        #expect(redis.pendingReplyCount == 0)
        // Later use fails at once, without touching the network.
        let later = try #require(throws: RedisError.self) { try redis.send(["PING"]) }
        #expect(later.code == .connectionBroken)
        #expect(later.command == "PING")
    }

    @Test func killedMidPipelineTheRepliedCommandsSucceedAndTheRestFail() throws {
        let server = try RedisServer()
        let configuration = server.configuration(readTimeout: .seconds(30))
        // The pipeline blocks in BLPOP on a thread of its own.
        let pipeline = BackgroundThread("pipeline") { () -> [Result<RedisValue, RedisError>] in
            guard let redis = try? RedisConnection(configuration: configuration) else { return [] }
            return redis.pipeline([
                ["SET", "a", "1"],
                ["BLPOP", "queue", "0"],  // waits forever for an element
                ["PING"],
                ["GET", "a"],
            ])
        }
        // The event: the server holds that connection blocked in BLPOP, so the
        // SET reply has been written and the remaining commands are unanswered.
        let observer = try server.connect()
        try poll(until: "a client blocked in BLPOP") {
            try observer.send(["INFO", "clients"]).string?.contains("blocked_clients:1\r\n") == true
        }
        // The INFO reply and the SET reply may be written in the same event
        // loop turn, the INFO reply first. One more round trip is answered in
        // a later turn, after the SET reply has gone out.
        #expect(try observer.send(["PING"]) == .status("PONG"))
        server.kill()

        let results = try pipeline.result()
        #expect(results.count == 4)
        #expect(try results.first?.get() == .status("OK"))
        for result in results.dropFirst() {
            let error = try #require(throws: RedisError.self) { try result.get() }
            #expect(error.isConnectionBroken)
        }
        let first = try #require(throws: RedisError.self) { try results[1].get() }
        #expect(first.command == "BLPOP")
    }

    @Test func reconnectAfterRestartReappliesTimeoutAndKeepalive() throws {
        let server = try RedisServer()
        let redis = try server.connect(readTimeout: .milliseconds(300))
        #expect(redis.socketKeepAlive == true)
        #expect(redis.socketReadTimeout == .milliseconds(300))
        #expect(try redis.send(["SET", "k", "v"]) == .status("OK"))

        try server.restart(empty: true)
        let error = try #require(throws: RedisError.self) { try redis.send(["GET", "k"]) }
        #expect(error.isConnectionBroken)
        #expect(redis.isBroken)

        try redis.reconnect()
        #expect(!redis.isBroken)
        #expect(try redis.send(["GET", "k"]) == .null)  // the server came back empty
        #expect(redis.socketKeepAlive == true)
        #expect(redis.socketReadTimeout == .milliseconds(300))

        // The read timeout still fires: BLPOP waits 10 s, the connection 0.3 s.
        let timeout = try #require(throws: RedisError.self) { try redis.send(["BLPOP", "queue", "10"]) }
        #expect(timeout.code == .timedOut)
        #expect(timeout.isConnectionBroken)
        #expect(redis.isBroken)
        try redis.reconnect()
        #expect(try redis.send(["PING"]) == .status("PONG"))
    }

    @Test func withoutAReadTimeoutTheSocketHasNone() throws {
        let server = try RedisServer()
        let configuration = RedisConnection.Configuration(
            host: server.host, port: Int(server.port), readTimeout: nil, keepAlive: false)
        let redis = try RedisConnection(configuration: configuration)
        #expect(redis.socketReadTimeout == .zero)
        #expect(redis.socketKeepAlive == false)
    }

    @Test func reconnectWhileTheServerIsDownFailsThenSucceedsOnceItIsBack() throws {
        let server = try RedisServer(options: .init(saveOnShutdown: true))
        let redis = try server.connect()
        #expect(try redis.send(["SET", "kept", "yes"]) == .status("OK"))
        server.stop()  // SIGTERM: saves dump.rdb

        let failed = try #require(throws: RedisError.self) { try redis.reconnect() }
        #expect(failed.code == .connectionFailed)
        #expect(redis.isBroken)
        let unusable = try #require(throws: RedisError.self) { try redis.send(["PING"]) }
        #expect(unusable.isConnectionBroken)

        try server.restart(empty: false)
        try redis.reconnect()
        #expect(try redis.send(["GET", "kept"]).string == "yes")  // loaded from dump.rdb
    }

    @Test func flushOnABrokenConnectionThrows() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        server.kill()
        redis.append(["PING"])
        #expect(throws: RedisError.self) {
            // The first write after the peer died may still be accepted by the
            // kernel; the reply read then sees EOF or a reset.
            try redis.flush()
            _ = try redis.readReply()
        }
        #expect(redis.isBroken)
    }
}

/// Misuse is a precondition failure, checked in a child process (an exit
/// test). Not under `.offCooperativePool`: the parent's part is async and
/// short, and must not wait behind the blocking suites' queue.
@Suite("Misuse of a Redis connection stops the process", .timeLimit(.minutes(5)))
struct RedisMisuseTests {
    @Test func usingAClosedConnectionStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            let listener = LoopbackListener()
            let redis = try? RedisConnection(host: "127.0.0.1", port: listener.port)
            redis?.close()
            redis?.append(["PING"])  // precondition failure
            exit(0)  // not reached; exiting 0 would fail the expectation
        }
    }
}
