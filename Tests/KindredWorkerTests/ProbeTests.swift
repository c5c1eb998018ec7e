import Foundation
import Hummingbird
import KindredCore
@testable import KindredTestKit
import KindredWorker
import Logging
import MariaDBClient
@_spi(Testing) import MemberStore
import MetricsEndpoint
import Prometheus
import ScoreStore
import Scoring
import ServiceLifecycle
import Testing
import TestSupport
@testable import WebAPI

/// `/livez`, `/readyz` and `/healthz` of the web backend and of the worker's
/// metrics server, against real MariaDB and Redis servers taken down under
/// them.
@Suite("Probes", .timeLimit(.minutes(5)))
struct ProbeTests {
    /// A web backend on a MariaDB of its own (to stop or freeze), after one
    /// read has put a member's shard in the directory cache.
    static func webWithWarmDirectory() async throws -> WebHarness {
        let web = try await onThread {
            try WebHarness(installation: try Installation(dedicatedMySQL: true, memberLimit: 60), generateFirst: true)
        }
        let member = web.installation.members[0].id
        let warm = try await web.send(.get, "/v1/members/\(member)/matches")
        #expect(warm.status == 200, "\(warm.body)")
        #expect(web.core.directory.cachedAssignments > 0)
        return web
    }

    @Test("web: one shard down is ready and degraded; every shard down is not ready; /livez answers throughout")
    func shards() async throws {
        let web = try await onThread { try WebHarness(memberLimit: 60, generate: false) }
        let live = try await web.send(.get, "/livez", token: nil)
        #expect(live.status == 200 && live.json["status"] as? String == "ok", "\(live.body)")
        let ready = try await web.send(.get, "/readyz", token: nil)
        #expect(ready.status == 200 && ready.json["status"] as? String == "ready", "\(ready.body)")
        #expect((ready.json["reasons"] as? [String]) == [], "\(ready.body)")

        try await onThread { web.installation.shards[0].kill() }
        let oneDown = try await web.send(.get, "/readyz", token: nil)
        #expect(oneDown.status == 200, "\(oneDown.body)")
        // A probe's checks are reused for a second: the change shows within it.
        let degraded = try await Self.probeUntil(web, "/healthz", "one shard down") { $0.json["status"] as? String == "degraded" }
        #expect(degraded.status == 200, "\(degraded.body)")
        #expect(web.registry.sample("kindred_shard_up", "shard", String(web.installation.shardIDs[0])) == 0)

        try await onThread {
            web.installation.shards[1].kill()
            web.installation.shards[2].kill()
        }
        let allDown = try await Self.probeUntil(web, "/readyz", "every shard down") { $0.status == 503 }
        #expect(allDown.json["status"] as? String == "not_ready", "\(allDown.body)")
        #expect((allDown.json["reasons"] as? [String]) == ["no shard is reachable"], "\(allDown.body)")
        let health = try await web.send(.get, "/healthz", token: nil)
        #expect(health.status == 503 && health.json["status"] as? String == "not_ready" && health.json["ready"] as? Bool == false)
        for shard in web.installation.shardIDs {
            #expect(web.registry.sample("kindred_shard_up", "shard", String(shard)) == 0)
        }
        let stillLive = try await web.send(.get, "/livez", token: nil)
        #expect(stillLive.status == 200)
    }

    @Test("web: MySQL down is ready while the directory cache holds members' shards, not ready with it empty")
    func mysqlDown() async throws {
        let web = try await Self.webWithWarmDirectory()
        let member = web.installation.members[0].id
        try await onThread { web.installation.mysqlServer.stop() }
        let started = ContinuousClock.now
        let ready = try await web.send(.get, "/readyz", token: nil)
        // A probe does not hang on the member store (see probeBound: a wall-clock bound is slack, not a speed test).
        #expect(ContinuousClock.now - started < Self.probeBound, "took \(ContinuousClock.now - started)")
        #expect(ready.status == 200, "\(ready.body)")
        let health = try await web.send(.get, "/healthz", token: nil)
        #expect(health.status == 200 && health.json["status"] as? String == "degraded", "\(health.body)")
        #expect(health.json["mysql"] as? String == "unavailable")
        // What the readiness promises: the cached member is served.
        let served = try await web.send(.get, "/v1/members/\(member)/matches")
        #expect(served.status == 200, "\(served.body)")

        web.core.directory.clearCache()
        let cold = try await web.send(.get, "/readyz", token: nil)
        #expect(cold.status == 503, "\(cold.body)")
        #expect((cold.json["reasons"] as? [String]) == ["the member store is unavailable and no member's shard is cached"], "\(cold.body)")

        try await onThread { try web.installation.mysqlServer.restart() }
        let back = try await Self.probeUntil(web, "/readyz", "MySQL back") { $0.status == 200 }
        #expect(back.json["status"] as? String == "ready", "\(back.body)")
        let healthy = try await Self.probeUntil(web, "/healthz", "MySQL back") { $0.json["status"] as? String == "ok" }
        #expect(healthy.status == 200, "\(healthy.body)")
    }

    /// The longest a probe may take while a dependency hangs: the probe's own
    /// bound (2 s, ``DependencyProbes/Settings/bound``) plus slack for a
    /// loaded test machine. It is the probe's timeouts that make it hold,
    /// not the machine's speed: without them a probe waits for libmariadb's
    /// default read timeout (60 s, and a SIGSTOPped server never answers
    /// sooner), so any bound below 60 s tells the two apart. The slack is
    /// wide because a full test run keeps both cores and the concurrency
    /// pool busy: a 300 ms timer has been seen to fire 11 s late, and in one
    /// CI run ten probes that each finish in ~2 s alone all answered after
    /// 20.5 s, released together when the pool freed up.
    static let probeBound: Duration = .seconds(45)

    /// Sends `path` until `done` holds of the answer (bounded: 60 s), each
    /// answer within ``probeBound``; returns the answer that satisfied it. The
    /// wait is wide for the same reason as ``probeBound``: a stalled test
    /// machine, not a slow probe.
    static func probeUntil(
        _ web: WebHarness, _ path: String, _ what: String, _ done: @escaping (WebHarness.Reply) -> Bool
    ) async throws -> WebHarness.Reply {
        var last: WebHarness.Reply?
        try await poll(until: "\(path) to show \(what)", timeout: .seconds(60), interval: .milliseconds(50)) {
            let started = ContinuousClock.now
            let reply = try await web.send(.get, path, token: nil)
            let took = ContinuousClock.now - started
            #expect(took < probeBound, "\(path) took \(took)")
            last = reply
            return done(reply)
        }
        return try #require(last)
    }

    /// `count` concurrent requests of `path`, each with how long it took.
    static func concurrently(_ web: WebHarness, _ path: String, count: Int) async throws -> [(reply: WebHarness.Reply, took: Duration)] {
        try await withThrowingTaskGroup(of: (reply: WebHarness.Reply, took: Duration).self) { group in
            for _ in 0..<count {
                group.addTask {
                    let started = ContinuousClock.now
                    let reply = try await web.send(.get, path, token: nil)
                    return (reply, ContinuousClock.now - started)
                }
            }
            var replies: [(reply: WebHarness.Reply, took: Duration)] = []
            for try await reply in group { replies.append(reply) }
            return replies
        }
    }

    @Test("web: MySQL hung (SIGSTOP): 10 concurrent probes answer within their bound, ready on a warm cache, MySQL unavailable; healthy after")
    func mysqlHung() async throws {
        let web = try await Self.webWithWarmDirectory()
        let member = web.installation.members[0].id
        // Each check connects anew: against the hung server the handshake waits out the connect timeout.
        let before = try await web.send(.get, "/healthz", token: nil)
        #expect(before.json["status"] as? String == "ok", "\(before.body)")

        try await onThread { try web.installation.mysqlServer.pause() }
        defer { try? web.installation.mysqlServer.resume() }
        for round in 0..<2 {
            // Probes and a read together: neither waits for the other.
            async let read = web.send(.get, "/v1/members/\(member)/matches")
            for (reply, took) in try await Self.concurrently(web, "/readyz", count: 10) {
                #expect(took < Self.probeBound, "round \(round): /readyz took \(took)")
                #expect(reply.status == 200 && reply.json["status"] as? String == "ready", "round \(round): \(reply.body)")
            }
            #expect(try await read.status == 200)
            if round == 0 {
                let health = try await Self.probeUntil(web, "/healthz", "MySQL unavailable") { $0.json["mysql"] as? String == "unavailable" }
                #expect(health.status == 200 && health.json["status"] as? String == "degraded", "\(health.body)")
                #expect(health.json["ready"] as? Bool == true && health.json["queue"] as? String == "ok", "\(health.body)")
            }
        }
        // A check's thread is not stuck either: its new connection to the hung
        // server gives up within its timeouts (connect 1 s, read 1 s), so
        // checks keep finishing.
        var configuration = web.core.sessions.store.mysql
        configuration.connectTimeout = .seconds(1)
        configuration.readTimeout = .seconds(1)
        configuration.writeTimeout = .seconds(1)
        let fresh = ConnectionCheck<MariaDBConnection>(
            open: { [configuration] in try MariaDBConnection(configuration: configuration) }, check: { try $0.ping() },
            close: { $0.close() })
        let (answered, took) = try await onThread { () -> (Bool, Duration) in
            let started = ContinuousClock.now
            return (fresh.check(), ContinuousClock.now - started)
        }
        #expect(!answered && took < Self.probeBound, "a new connection to the hung server: \(answered) after \(took)")

        try await onThread { try web.installation.mysqlServer.resume() }
        let healthy = try await Self.probeUntil(web, "/healthz", "MySQL back") { $0.json["status"] as? String == "ok" }
        #expect(healthy.json["mysql"] as? String == "ok", "\(healthy.body)")
    }

    @Test("web: a hung shard (SIGSTOP): probes answer within their bound, ready and degraded; healthy after it thaws")
    func shardHung() async throws {
        let web = try await onThread { try WebHarness(memberLimit: 60, generate: false) }
        let before = try await web.send(.get, "/healthz", token: nil)
        #expect(before.json["status"] as? String == "ok", "\(before.body)")
        let hung = String(web.installation.shardIDs[0])

        web.installation.shards[0].freeze()
        defer { web.installation.shards[0].thaw() }
        let health = try await Self.probeUntil(web, "/healthz", "the hung shard unavailable") {
            ($0.json["shards"] as? [String: String])?[hung] == "unavailable"
        }
        #expect(health.status == 200 && health.json["status"] as? String == "degraded", "\(health.body)")
        let others = (health.json["shards"] as? [String: String] ?? [:]).filter { $0.key != hung }
        #expect(others.count == 2 && others.values.allSatisfy { $0 == "ok" }, "\(health.body)")
        #expect(web.registry.sample("kindred_shard_up", "shard", hung) == 0)
        for (reply, took) in try await Self.concurrently(web, "/readyz", count: 10) {
            #expect(took < Self.probeBound, "/readyz took \(took)")
            #expect(reply.status == 200 && reply.json["status"] as? String == "ready", "\(reply.body)")
        }
        let stillDegraded = try await web.send(.get, "/healthz", token: nil)
        #expect(stillDegraded.status == 200 && stillDegraded.json["status"] as? String == "degraded", "\(stillDegraded.body)")

        web.installation.shards[0].thaw()
        let healthy = try await Self.probeUntil(web, "/healthz", "the shard back") { $0.json["status"] as? String == "ok" }
        #expect(healthy.status == 200, "\(healthy.body)")
        #expect(web.registry.sample("kindred_shard_up", "shard", hung) == 1)
    }

    @Test("probe checks: concurrent probes share one check; a probe waits until its deadline at most; a result is reused while fresh")
    func sharedCheck() async throws {
        let gate = ProbeGate()
        let check = SharedCheck(name: "probe-test") {
            gate.wait()
            return true
        }
        let since = ContinuousClock.now
        let deadline = ContinuousClock.now + .milliseconds(300)
        let outcomes = await withTaskGroup(of: Bool?.self) { group in
            for _ in 0..<10 { group.addTask { await check.outcome(finishedSince: since, deadline: deadline) } }
            var outcomes: [Bool?] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        // The check hangs (until the gate opens below): every probe gave up at its deadline, on
        // one check. Had a probe waited for the check instead, this point would never be reached.
        #expect(outcomes == Array(repeating: nil, count: 10))
        #expect(check.checksStarted == 1)

        gate.open()
        #expect(await check.outcome(finishedSince: since, deadline: ContinuousClock.now + .seconds(10)) == true)
        #expect(check.checksStarted == 1, "the running check answered the late probe")
        #expect(await check.outcome(finishedSince: since, deadline: ContinuousClock.now) == true)
        #expect(check.checksStarted == 1, "a fresh result is reused")
        #expect(await check.outcome(finishedSince: ContinuousClock.now, deadline: ContinuousClock.now + .seconds(10)) == true)
        #expect(check.checksStarted == 2, "an older one is not")
    }

    @Test("worker: /livez always; /readyz 503 while the queue or MySQL is down, shards reported; no HTTP families")
    func worker() async throws {
        let installation = try await onThread { try Installation(dedicatedMySQL: true, memberLimit: 30) }
        let registry = PrometheusCollectorRegistry()
        let runtime = try await onThread { try installation.worker(registry: registry) }
        let context = runtime.core
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let server = MetricsServer.make(
            registry: registry, host: "127.0.0.1", port: 0, logger: context.logger, probe: { [probe = WorkerProbe(runtime: runtime)] in probe.readiness() },
            onServerRunning: { portContinuation.yield($0) })
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: context.logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var ports = portStream.makeAsyncIterator()
            let port = try #require(await ports.next())
            func get(_ path: String) async throws -> (status: Int, body: String) {
                let text = try await onThread { try httpGet(port: port, path: path, token: nil) }
                let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
                let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
                return (status, body)
            }
            #expect(try await get("/livez").status == 200)
            let ready = try await get("/readyz")
            #expect(ready.status == 200 && ready.body.contains("\"status\":\"ready\""), "\(ready.body)")

            try await onThread { installation.shards[0].kill() }
            let shardDown = try await get("/readyz")
            #expect(shardDown.status == 200, "a shard down postpones its members' jobs only: \(shardDown.body)")
            #expect(shardDown.body.contains("\"\(installation.shardIDs[0])\":\"unavailable\""), "\(shardDown.body)")

            try await onThread { installation.queueServer.kill() }
            let queueDown = try await get("/readyz")
            #expect(queueDown.status == 503 && queueDown.body.contains("\"queue\":\"unavailable\""), "\(queueDown.body)")
            #expect(queueDown.body.contains("\"mysql\":\"ok\""), "\(queueDown.body)")
            try await onThread { try installation.queueServer.restart(empty: false) }
            #expect(try await get("/readyz").status == 200)

            try await onThread { installation.mysqlServer.stop() }
            let mysqlDown = try await get("/readyz")
            #expect(mysqlDown.status == 503 && mysqlDown.body.contains("\"mysql\":\"unavailable\""), "\(mysqlDown.body)")
            #expect(try await get("/livez").status == 200)
            try await onThread { try installation.mysqlServer.restart() }
            #expect(try await get("/readyz").status == 200)

            let metrics = try await get("/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.body.contains("\nkindred_jobs_total{outcome=\"done\"} 0\n"), "\(metrics.body.prefix(400))")
            #expect(metrics.body.contains("\nprocess_resident_memory_bytes "))
            #expect(!metrics.body.contains("kindred_http_"))
            #expect(registry.sample("kindred_shard_up", "shard", String(installation.shardIDs[0])) == 0)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        context.scores.manager.close()
    }
}

/// Holds the threads that wait on it until it is opened.
private final class ProbeGate: @unchecked Sendable {
    // @unchecked Sendable: `isOpen` is only touched under `condition`.
    private let condition = NSCondition()
    private var isOpen = false

    func wait() {
        condition.lock()
        defer { condition.unlock() }
        // Bounded: a test that never opens the gate does not hang its thread.
        let until = Date().addingTimeInterval(30)
        while !isOpen && condition.wait(until: until) {}
    }

    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }
}
