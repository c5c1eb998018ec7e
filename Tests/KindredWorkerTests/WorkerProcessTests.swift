import Foundation
@testable import KindredTestKit
import MariaDBClient
@_spi(Testing) import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Testing
import TestSupport
import WorkQueue

/// `kindred worker` as a real process: SIGKILLed, SIGTERMed, with a shard and
/// MySQL restarted under it. Serialized: each test runs worker processes and
/// servers of its own, and the machine has two cores.
@Suite("Worker daemon process", .serialized, .timeLimit(.minutes(10)))
struct WorkerProcessTests {
    @Test("the worker generates every set; SIGKILLed three times mid-run and restarted, it loses nothing")
    func killAndRestart() async throws {
        try await onThread("killAndRestart") {
            let installation = try Installation()
            try installation.enqueueAll()
            let total = installation.members.count
            for (round, progress) in [150, 450, 750].enumerated() {
                let worker = try WorkerChecks.startWorker(installation, name: "worker-\(round)")
                try WorkerChecks.waitForGenerated(installation, atLeast: progress, worker: worker)
                worker.kill()
            }
            let last = try WorkerChecks.startWorker(installation, name: "worker-last")
            defer { last.terminate() }
            try WorkerChecks.waitForGenerated(installation, atLeast: total, worker: last)
            let stats = try WorkerChecks.waitForIdleQueue(installation)
            #expect(stats.dead == 0)
            try WorkerChecks.expectAllSetsCorrect(installation)
        }
    }

    @Test("SIGTERM during a run: the worker exits within the bound and no job is lost")
    func gracefulStop() async throws {
        try await onThread("gracefulStop") {
            let installation = try Installation()
            try installation.enqueueAll()
            let worker = try WorkerChecks.startWorker(installation)
            try WorkerChecks.waitForGenerated(installation, atLeast: 200, worker: worker)
            let start = ContinuousClock.now
            worker.signal(SIGTERM)
            #expect(worker.waitForExit(timeout: .seconds(30)), "the worker did not exit after SIGTERM")
            #expect(ContinuousClock.now - start < .seconds(15), "took \(ContinuousClock.now - start)")
            #expect(worker.exitStatus == 0, "\(worker.logTail())")
            // Nothing is left held by the stopped worker: every job is done or waiting.
            let redis = try installation.queueServer.connect()
            let stats = try WorkQueue().stats(on: QueueConnection(redis))
            #expect(stats.processing == 0)
            #expect(try installation.generatedCount() + stats.waiting.values.reduce(0, +) >= installation.members.count)
            let again = try WorkerChecks.startWorker(installation, name: "worker-again")
            defer { again.terminate() }
            try WorkerChecks.waitForGenerated(installation, atLeast: installation.members.count, worker: again)
            #expect(try WorkerChecks.waitForIdleQueue(installation).dead == 0)
            try WorkerChecks.expectAllSetsCorrect(installation)
        }
    }

    @Test("a shard restarted empty is regenerated without anyone asking")
    func shardComesBackEmpty() async throws {
        try await onThread("shardComesBackEmpty") {
            let installation = try Installation()
            try installation.enqueueAll()
            let worker = try WorkerChecks.startWorker(installation)
            defer { worker.terminate() }
            try WorkerChecks.waitForGenerated(installation, atLeast: installation.members.count, worker: worker)
            _ = try WorkerChecks.waitForIdleQueue(installation)
            // Shard 2 loses everything (it held about a third of the sets).
            let shard2 = try installation.shards[1].connect()
            #expect(try shard2.send(["DBSIZE"]).int ?? 0 > 300)
            try installation.shards[1].restart(empty: true)
            // (The watcher may already be repairing: a few keys may be back.)
            #expect(try installation.shards[1].connect().send(["DBSIZE"]).int ?? 0 < 100, "the restart emptied shard 2")
            try poll(until: "shard 2's sets to come back", timeout: .seconds(120), interval: .milliseconds(200)) {
                guard worker.isRunning else { throw TestSupportError("the worker exited: \(worker.logTail())") }
                return try installation.storedSets().values.allSatisfy { $0 != nil }
            }
            _ = try WorkerChecks.waitForIdleQueue(installation)
            try WorkerChecks.expectAllSetsCorrect(installation)
        }
    }

    @Test("MySQL restarted mid-run: workers pause, retry and resume; nothing is lost")
    func mysqlRestart() async throws {
        try await onThread("mysqlRestart") {
            let installation = try Installation(dedicatedMySQL: true)
            try installation.enqueueAll()
            let worker = try WorkerChecks.startWorker(installation)
            defer { worker.terminate() }
            try WorkerChecks.waitForGenerated(installation, atLeast: 150, worker: worker)
            installation.mysqlServer.stop()
            try installation.mysqlServer.restart()
            try WorkerChecks.waitForGenerated(installation, atLeast: installation.members.count, worker: worker)
            let stats = try WorkerChecks.waitForIdleQueue(installation)
            #expect(stats.dead == 0)
            #expect(worker.isRunning)
            try WorkerChecks.expectAllSetsCorrect(installation)
        }
    }

    @Test("a member whose stored data breaks the rules ends in the dead letters with a reason; the daemon keeps going")
    func deadLetter() async throws {
        try await onThread("deadLetter") {
            let installation = try Installation()
            let connection = try installation.connectMySQL()
            try connection.execute("UPDATE members SET age_min = 90, age_max = 30 WHERE id = 42")
            connection.close()
            try installation.enqueueAll()
            let worker = try WorkerChecks.startWorker(installation)
            defer { worker.terminate() }
            try WorkerChecks.waitForGenerated(installation, atLeast: installation.members.count - 1, worker: worker)
            let stats = try WorkerChecks.waitForIdleQueue(installation)
            #expect(stats.dead == 1)
            let dead = try WorkQueue().deadJobs(on: QueueConnection(try installation.queueServer.connect()))
            #expect(dead.map(\.member) == [42])
            #expect(dead.first?.reason.contains("age_min") == true, "\(dead.first?.reason ?? "")")
            #expect(worker.isRunning)
            // Everyone else is correct, over the population without member 42.
            let others = installation.members.filter { $0.id != 42 }
            try WorkerChecks.expectAllSetsCorrect(installation, members: others)
        }
    }
}
