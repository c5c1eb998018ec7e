import Foundation
import MemberStore
import Pipeline
import RedisClient
import Scoring
import ScoreStore
import Testing
import TestSupport
import WorkQueue

/// One generation worker's loop, in-process, against real servers.
@Suite("Worker loop", .timeLimit(.minutes(5)))
struct WorkerLoopTests {
    @Test("jobs whose shards are down are postponed, not dead-lettered, however long the outage; they finish once the shards are back")
    func shardOutagePostpones() async throws {
        try await onThread("shardOutagePostpones") {
            let installation = try Installation(memberLimit: 100)
            // Three attempts at most (the Environment's policy): an outage of more than three tries must not kill a job.
            let (context, _) = try installation.context(workers: 1)
            let chosen = installation.members.prefix(3).map(\.id)
            for shard in installation.shards { shard.kill() }
            try WorkQueue().enqueue(chosen, priority: .interactive, on: try installation.queueServer.connect())

            let stop = StopSignal()
            let worker = BackgroundThread("worker-loop") { WorkerLoop(context: context, index: 0).run(stop: stop) }
            defer {
                stop.stop()
                _ = try? worker.result(timeout: .seconds(30))
            }
            let queue = try installation.queueServer.connect()
            func postponements() throws -> [Int] {
                try chosen.map { try queue.send(["HGET", "kq:postponed", String($0)]).string.flatMap(Int.init) ?? 0 }
            }
            try poll(until: "every job postponed more often than a job may fail", timeout: .seconds(60), interval: .milliseconds(50)) {
                let dead = try WorkQueue().deadJobs(on: queue)
                if !dead.isEmpty { throw TestSupportError("jobs died during the outage: \(dead.map(\.reason))") }
                return try postponements().allSatisfy { $0 > 3 }
            }
            let dead = try WorkQueue().deadJobs(on: queue)
            #expect(dead.isEmpty, "\(dead.map(\.reason))")
            #expect(try queue.send(["HLEN", "kq:attempts"]).int == 0, "postponements are not attempts")

            for shard in installation.shards { try shard.restart(empty: true) }
            try poll(until: "the postponed members generated", timeout: .seconds(60), interval: .milliseconds(50)) {
                try installation.generatedCount() == chosen.count
            }
            try poll(until: "an idle queue", timeout: .seconds(10), interval: .milliseconds(50)) {
                let stats = try WorkQueue().stats(on: queue)
                return stats.delayed == 0 && stats.processing == 0 && stats.waiting.values.reduce(0, +) == 0
            }
            #expect(try WorkQueue().stats(on: queue).dead == 0)
            #expect(try queue.send(["HLEN", "kq:postponed"]).int == 0, "finished jobs forget their postponements")
            let expected = try Installation.expectedMatches(installation.members, survey: installation.survey)
            let stored = try installation.storedSets()
            for member in chosen { #expect(stored[member] == .some(expected[member]), "member \(member)") }
        }
    }
}
