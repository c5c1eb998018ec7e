import Foundation
import Hummingbird
import Logging
import MemberStore
import Pipeline
import Prometheus
import Scoring
import ScoreStore
import ServiceLifecycle
import Testing
import TestSupport
import WebAPI

/// `/livez`, `/readyz` and `/healthz` of the web backend and of the worker's
/// metrics server, against real MariaDB and Redis servers taken down under
/// them.
@Suite("Probes", .timeLimit(.minutes(5)))
struct ProbeTests {
    @Test("web: one shard down is ready and degraded; every shard down is not ready; /livez answers throughout")
    func shards() async throws {
        let web = try await onThread { try WebHarness(memberLimit: 60, generate: false) }
        let live = try await web.send(.get, "/livez", token: nil)
        #expect(live.status == 200 && live.json["status"] as? String == "ok", "\(live.body)")
        let ready = try await web.send(.get, "/readyz", token: nil)
        #expect(ready.status == 200 && ready.json["status"] as? String == "ready", "\(ready.body)")
        #expect((ready.json["reasons"] as? [String]) == [], "\(ready.body)")

        web.installation.shards[0].kill()
        let oneDown = try await web.send(.get, "/readyz", token: nil)
        #expect(oneDown.status == 200, "\(oneDown.body)")
        let degraded = try await web.send(.get, "/healthz", token: nil)
        #expect(degraded.status == 200 && degraded.json["status"] as? String == "degraded", "\(degraded.body)")
        #expect(web.registry.sample("kindred_shard_up", "shard", String(web.installation.shardIDs[0])) == 0)

        web.installation.shards[1].kill()
        web.installation.shards[2].kill()
        let allDown = try await web.send(.get, "/readyz", token: nil)
        #expect(allDown.status == 503 && allDown.json["status"] as? String == "not_ready", "\(allDown.body)")
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
        let web = try await onThread {
            try WebHarness(installation: try Installation(dedicatedMySQL: true, memberLimit: 60), generateFirst: true)
        }
        let member = web.installation.members[0].id
        let warm = try await web.send(.get, "/v1/members/\(member)/matches")
        #expect(warm.status == 200, "\(warm.body)")
        #expect(web.context.directory.cachedAssignments > 0)
        try await onThread { web.installation.mysqlServer.stop() }
        let started = ContinuousClock.now
        let ready = try await web.send(.get, "/readyz", token: nil)
        // A probe does not wait out the requests' MySQL retry budget (2 s).
        #expect(ContinuousClock.now - started < .seconds(2), "took \(ContinuousClock.now - started)")
        #expect(ready.status == 200, "\(ready.body)")
        let health = try await web.send(.get, "/healthz", token: nil)
        #expect(health.status == 200 && health.json["status"] as? String == "degraded", "\(health.body)")
        #expect(health.json["mysql"] as? String == "unavailable")
        // What the readiness promises: the cached member is served.
        let served = try await web.send(.get, "/v1/members/\(member)/matches")
        #expect(served.status == 200, "\(served.body)")

        web.context.directory.clearCache()
        let cold = try await web.send(.get, "/readyz", token: nil)
        #expect(cold.status == 503, "\(cold.body)")
        #expect((cold.json["reasons"] as? [String]) == ["the member store is unavailable and no member's shard is cached"], "\(cold.body)")

        try await onThread { try web.installation.mysqlServer.restart() }
        let back = try await web.send(.get, "/readyz", token: nil)
        #expect(back.status == 200, "\(back.body)")
        let healthy = try await web.send(.get, "/healthz", token: nil)
        #expect(healthy.json["status"] as? String == "ok", "\(healthy.body)")
    }

    @Test("worker: /livez always; /readyz 503 while the queue or MySQL is down, shards reported; no HTTP families")
    func worker() async throws {
        let installation = try await onThread { try Installation(dedicatedMySQL: true, memberLimit: 30) }
        let registry = PrometheusCollectorRegistry()
        let (context, _) = try await onThread { try installation.context(registry: registry) }
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let server = MetricsServer.make(
            registry: registry, host: "127.0.0.1", port: 0, logger: context.logger, probe: WorkerProbe(context: context),
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

            installation.shards[0].kill()
            let shardDown = try await get("/readyz")
            #expect(shardDown.status == 200, "a shard down postpones its members' jobs only: \(shardDown.body)")
            #expect(shardDown.body.contains("\"\(installation.shardIDs[0])\":\"unavailable\""), "\(shardDown.body)")

            installation.queueServer.kill()
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
