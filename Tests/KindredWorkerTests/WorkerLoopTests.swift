import Foundation
import KindredCore
import KindredSupport
@testable import KindredTestKit
import KindredWorker
@_spi(Testing) import MemberStore
import Prometheus
import RedisClient
import ScoreStore
import Scoring
import ServiceLifecycle
import Testing
import TestSupport
import WorkQueue

/// One generation worker's loop, in-process, against real servers.
@Suite("Worker loop", .timeLimit(.minutes(5)))
struct WorkerLoopTests {
    @Test("worker activity: a worker is stuck only while on one job for longer than the deadline")
    func activity() {
        let activity = WorkerActivity(workers: 3)
        let t0 = ContinuousClock.now
        activity.begin(1, at: t0)
        activity.begin(2, at: t0 + .seconds(5))
        activity.begin(7, at: t0)  // not a worker of this process: ignored
        #expect(activity.stuck(longerThan: .seconds(10), now: t0 + .seconds(10)).isEmpty, "exactly the deadline is not past it")
        #expect(activity.stuck(longerThan: .seconds(10), now: t0 + .seconds(11)) == [1])
        #expect(activity.stuck(longerThan: .seconds(10), now: t0 + .seconds(16)) == [1, 2])
        activity.end(1)
        #expect(activity.stuck(longerThan: .seconds(10), now: t0 + .seconds(16)) == [2])
        activity.begin(1, at: t0 + .seconds(15))  // the next job starts a new clock
        #expect(activity.stuck(longerThan: .seconds(10), now: t0 + .seconds(16)) == [2])
    }

    @Test("jobs whose shards are down are postponed, not dead-lettered, however long the outage; they finish once the shards are back")
    func shardOutagePostpones() async throws {
        try await onThread("shardOutagePostpones") {
            let installation = try Installation(memberLimit: 100)
            // Three attempts at most (WorkerSettings.testing): an outage of more than three tries must not kill a job.
            let runtime = try installation.worker(workers: 1)
            let chosen = installation.members.prefix(3).map(\.id)
            for shard in installation.shards { shard.kill() }
            try WorkQueue().enqueue(chosen, priority: .interactive, on: QueueConnection(try installation.queueServer.connect()))

            let stop = StopSignal()
            let worker = BackgroundThread("worker-loop") { WorkerLoop(runtime: runtime, index: 0).run(stop: stop) }
            defer {
                stop.stop()
                _ = try? worker.result(timeout: .seconds(30))
            }
            let queue = try installation.queueServer.connect()
            func postponements() throws -> [Int] {
                try chosen.map { try queue.send(["HGET", "kq:postponed", String($0)]).string.flatMap(Int.init) ?? 0 }
            }
            try poll(until: "every job postponed more often than a job may fail", timeout: .seconds(60), interval: .milliseconds(50)) {
                let dead = try WorkQueue().deadJobs(on: QueueConnection(queue))
                if !dead.isEmpty { throw TestSupportError("jobs died during the outage: \(dead.map(\.reason))") }
                return try postponements().allSatisfy { $0 > 3 }
            }
            let dead = try WorkQueue().deadJobs(on: QueueConnection(queue))
            #expect(dead.isEmpty, "\(dead.map(\.reason))")
            #expect(try queue.send(["HLEN", "kq:attempts"]).int == 0, "postponements are not attempts")

            for shard in installation.shards { try shard.restart(empty: true) }
            try poll(until: "the postponed members generated", timeout: .seconds(60), interval: .milliseconds(50)) {
                try installation.generatedCount() == chosen.count
            }
            try poll(until: "an idle queue", timeout: .seconds(10), interval: .milliseconds(50)) {
                let stats = try WorkQueue().stats(on: QueueConnection(queue))
                return stats.delayed == 0 && stats.processing == 0 && stats.waiting.values.reduce(0, +) == 0
            }
            #expect(try WorkQueue().stats(on: QueueConnection(queue)).dead == 0)
            #expect(try queue.send(["HLEN", "kq:postponed"]).int == 0, "finished jobs forget their postponements")
            let expected = try Installation.expectedMatches(installation.members, survey: installation.survey)
            let stored = try installation.storedSets()
            for member in chosen { #expect(stored[member] == .some(expected[member]), "member \(member)") }
        }
    }

    @Test("a worker stuck on one job past the deadline loses its heartbeat: the job goes back to the queue, and is done once things move")
    func stuckWorkerIsReaped() async throws {
        let installation = try await onThread { try Installation(memberLimit: 100) }
        let registry = PrometheusCollectorRegistry()
        let manager = {
            var manager = ShardConnectionManager.Configuration()
            manager.readTimeout = .seconds(60)  // a frozen shard holds the job far past the deadline
            return manager
        }()
        let runtime = try await onThread {
            try installation.worker(workers: 1, manager: manager, registry: registry, configureWorker: { settings in
                settings.jobDeadline = .seconds(1)  // a debug-build job here takes milliseconds, even on a loaded machine
                settings.heartbeatInterval = .milliseconds(50)
                settings.reapTimeout = .milliseconds(500)
                settings.reapInterval = .milliseconds(100)
            })
        }
        let context = runtime.core
        let member = installation.members[0].id
        for shard in installation.shards { shard.freeze() }
        defer { for shard in installation.shards { shard.thaw() } }
        _ = try await onThread { try WorkQueue().enqueue([member], priority: .interactive, on: QueueConnection(try installation.queueServer.connect())) }

        let stop = StopSignal()
        let group = ServiceGroup(
            services: [Maintenance.heartbeat(runtime), Maintenance.reaper(runtime)], logger: context.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let worker = BackgroundThread("worker-loop") { WorkerLoop(runtime: runtime, index: 0).run(stop: stop) }
            try await onThread {
                defer { stop.stop() }
                let queue = try installation.queueServer.connect()
                // The worker took the job and hangs on the frozen shard; past the
                // deadline its heartbeat stops and the reaper puts the job back.
                try poll(until: "the stuck worker's job reaped", timeout: .seconds(30), interval: .milliseconds(50)) {
                    try queue.send(["HGET", "kq:attempts", String(member)]).string == "1"  // the stall counts an attempt
                }
                #expect(try WorkQueue().stats(on: QueueConnection(queue)).waiting[.interactive] == 1, "the job is back in the queue")
                #expect(runtime.activity.stuck(longerThan: .seconds(1)) == [0], "the worker is still on its job")
                for shard in installation.shards { shard.thaw() }
                // The stuck job finishes late (harmless); the worker fetches the returned one and does it again.
                try poll(until: "the member generated and the queue idle", timeout: .seconds(60), interval: .milliseconds(50)) {
                    let stats = try WorkQueue().stats(on: QueueConnection(queue))
                    return try installation.generatedCount() == 1 && stats.waiting.values.reduce(0, +) == 0
                        && stats.processing == 0 && stats.delayed == 0
                }
                #expect(try WorkQueue().stats(on: QueueConnection(queue)).dead == 0)
                stop.stop()
                _ = try worker.result(timeout: .seconds(30))
                #expect(runtime.activity.stuck(longerThan: .zero).isEmpty)
            }
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
        var exposition: [UInt8] = []
        registry.emit(into: &exposition)
        #expect(String(decoding: exposition, as: UTF8.self).contains("kindred_worker_stalls_total 1"))
        let stored = try await onThread { try installation.storedSets()[member] }
        let expected = try Installation.expectedMatches(installation.members, survey: installation.survey)
        #expect(stored == .some(expected[member]))
    }
}
