import Foundation
import Hummingbird
import KindredCore
import KindredSupport
@testable import KindredTestKit
import KindredWorker
import Prometheus
import RedisClient
import ScoreStore
import Scoring
import Testing
import TestSupport
import WorkQueue

/// Reads of members whose shard is down, with a worker running: each read
/// answers 503 and asks for a rebuild, the worker postpones it; the queue
/// must keep one run per member, so that the shard's return costs one
/// regeneration per member, not one per read.
@Suite("Reads during a shard outage", .serialized, .timeLimit(.minutes(5)))
struct ShardOutageReadTests {
    @Test("repeated reads during a shard outage leave one delayed run per member; each is regenerated exactly once when the shard is back")
    func readsDuringOutage() async throws {
        // Postponements back off as in production (from 1 s): with the tests' usual 50-200 ms, 30
        // members come due faster than a worker on a loaded machine postpones them, and the queue
        // never has the quiet instant this test waits for.
        let harness = try await onThread { try WebHarness(memberLimit: 100) }
        let context = harness.core
        var settings = WorkerSettings(workers: 1)
        settings.jobRetry = JobRetryPolicy(maxAttempts: 3, baseDelay: .seconds(1), maxDelay: .seconds(4))
        let runtime = WorkerRuntime(core: context, settings: settings)
        let installation = harness.installation
        // Up to 30 members of the first member's shard.
        let (shardIndex, chosen) = try await onThread { () -> (Int, [MemberID]) in
            let shard = try harness.shard(of: installation.members[0].id)
            var chosen: [MemberID] = []
            for member in installation.members where chosen.count < 30 {
                if try harness.shard(of: member.id) == shard { chosen.append(member.id) }
            }
            return (try require(installation.shardIDs.firstIndex(of: shard)), chosen)
        }
        #expect(chosen.count >= 10)
        let queue = try await onThread { try SharedRedis(installation.queueServer) }
        let workerID = WorkerLoop.workerID(runtime, 0)
        /// Waiting, in-flight and delayed runs, read at one instant (MULTI).
        @Sendable func queueState() throws -> (waiting: Int, processing: Int, delayed: [String]) {
            let replies = try queue.pipeline([
                ["MULTI"], ["HVALS", "kq:depth"], ["LLEN", "kq:processing:\(workerID)"], ["ZRANGE", "kq:delayed", "0", "-1"], ["EXEC"],
            ])
            let exec = try require(try replies.last?.get().array, "EXEC answered")
            let waiting = (exec[0].array ?? []).compactMap { $0.string.flatMap(Int.init) }.reduce(0, +)
            return (waiting, exec[1].int ?? -1, (exec[2].array ?? []).compactMap(\.string))
        }

        try await onThread { installation.shards[shardIndex].kill() }
        let stop = StopSignal()
        let worker = BackgroundThread("worker-loop") { WorkerLoop(runtime: runtime, index: 0).run(stop: stop) }
        var reads = 0
        do {
            for _ in 0..<8 {
                for member in chosen {
                    let reply = try await harness.send(.get, "/v1/members/\(member)/matches")
                    #expect(reply.status == 503, "member \(member): \(reply.body)")
                    reads += 1
                }
            }
            #expect(reads == chosen.count * 8)
            #expect(
                harness.registry.sample("kindred_jobs_total", "outcome", "postponed") ?? 0 >= Double(chosen.count),
                "the worker postponed the rebuilds while the reads went on")

            // Once no request comes, every member settles in the delayed set, once.
            let settled = Latest<[String]>()
            try await onThread {
                try poll(until: "nothing waiting or in flight", timeout: .seconds(30), interval: .milliseconds(2)) {
                    let state = try queueState()
                    settled.value = state.delayed
                    return state.waiting == 0 && state.processing == 0
                }
            }
            let delayed = settled.value ?? []
            #expect(delayed.count == chosen.count, "one delayed run per member, not one per read (\(delayed.count) for \(chosen.count) members)")
            #expect(Set(delayed) == Set(chosen.map(String.init)))
            let doneBefore = harness.registry.sample("kindred_jobs_total", "outcome", "done") ?? 0

            try await onThread { try installation.shards[shardIndex].restart(empty: true) }
            try await onThread {
                try poll(until: "the members regenerated and the queue idle", timeout: .seconds(60), interval: .milliseconds(20)) {
                    let state = try queueState()
                    return state.waiting == 0 && state.processing == 0 && state.delayed.isEmpty
                }
            }
            let regenerated = (harness.registry.sample("kindred_jobs_total", "outcome", "done") ?? 0) - doneBefore
            #expect(regenerated == Double(chosen.count), "one regeneration per member after the shard returned")
            let missing = try await onThread {
                try chosen.filter { try context.scores.readMeta($0, shard: installation.shardIDs[shardIndex]) == nil }
            }
            #expect(missing.isEmpty, "sets not rebuilt: \(missing)")
        } catch {
            stop.stop()
            _ = try? worker.result(timeout: .seconds(30))
            throw error
        }
        stop.stop()
        _ = try worker.result(timeout: .seconds(30))
    }
}
