import Foundation
import KindredRuns
@testable import KindredTestKit
import MariaDBClient
@_spi(Testing) import MemberStore
import Scoring
import Testing
import TestSupport

/// `kindred backfill` and `kindred evict` as real processes: interrupted by
/// SIGINT and by SIGKILL and resumed, refused for a memory budget, dry.
/// Serialized: each test runs processes and servers of its own on two cores.
@Suite("Backfill process", .serialized, .timeLimit(.minutes(10)))
struct BackfillProcessTests {
    static let now = "2026-11-01T00:00:00Z"

    /// Starts `kindred ARGUMENTS` on the installation (output to a log file).
    static func start(
        _ installation: Installation, _ arguments: [String], name: String, environment changes: [String: String?] = [:]
    ) throws -> ServerProcess {
        let log = try makeTemporaryDirectory(prefix: "kindred-backfill").appendingPathComponent("\(name).log")
        var environment = installation.environment
        for (key, value) in changes { environment[key] = value }
        return try ServerProcess(
            name: name, executable: try WorkerChecks.binary(), arguments: arguments, logFile: log,
            environment: environment)
    }

    /// Runs `kindred ARGUMENTS` to its end (bounded) and returns its exit status and output.
    static func run(
        _ installation: Installation, _ arguments: [String], name: String, environment: [String: String?] = [:],
        timeout: Duration = .seconds(180)
    ) throws -> (status: Int32, output: String) {
        let process = try start(installation, arguments, name: name, environment: environment)
        guard process.waitForExit(timeout: timeout) else {
            process.kill()
            throw TestSupportError("\(name) did not finish within \(timeout): \(process.logTail())")
        }
        return (process.exitStatus ?? -1, (try? String(contentsOf: process.logFile, encoding: .utf8)) ?? "")
    }

    /// The open or last run's checkpoint row.
    static func runRow(_ installation: Installation) throws -> (checkpoint: Int64, done: Int64, skipped: Int64, state: String)? {
        let connection = try installation.connectMySQL()
        defer { connection.close() }
        return try connection.query(
            "SELECT checkpoint, done_count, skipped_count, state FROM backfill_runs ORDER BY id DESC LIMIT 1"
        ).first.map { ($0.int(0) ?? 0, $0.int(1) ?? 0, $0.int(2) ?? 0, $0.string(3) ?? "") }
    }

    /// When each member's set was generated (Unix ms).
    static func generatedAt(_ installation: Installation) throws -> [MemberID: Int64] {
        let connection = try installation.connectMySQL()
        defer { connection.close() }
        var all: [MemberID: Int64] = [:]
        for row in try connection.query("SELECT member_id, generated_at FROM generations") {
            all[MemberID(truncatingIfNeeded: row.uint(0) ?? 0)] = row.int(1)
        }
        return all
    }

    /// Interrupts a slowed-down backfill of everyone with `signal` once its
    /// checkpoint has passed `progress` members, resumes it, and checks
    /// that nothing finished before was rebuilt and that every set is exact.
    static func interruptAndResume(signal: Int32, progress: Int64) throws {
        let installation = try Installation()
        let arguments = ["backfill", "--all", "--now", now, "--concurrency", "2", "--progress-every", "1"]
        let first = try start(installation, arguments + ["--rate", "60"], name: "backfill-first")
        try poll(until: "the checkpoint to pass \(progress) members", timeout: .seconds(120), interval: .milliseconds(50)) {
            guard first.isRunning else { throw TestSupportError("the backfill exited: \(first.logTail())") }
            return try runRow(installation).map { $0.done >= progress } ?? false
        }
        first.signal(signal)
        #expect(first.waitForExit(timeout: .seconds(30)), "the backfill did not exit after signal \(signal)")
        let log = (try? String(contentsOf: first.logFile, encoding: .utf8)) ?? ""
        if signal == SIGINT {
            #expect(first.exitStatus == 130, "\(first.logTail())")
            #expect(log.contains("interrupted: run 1") && log.contains("resume with the same command"), "\(first.logTail())")
        }
        let before = try generatedAt(installation)
        let stopped = try #require(try runRow(installation))
        #expect(stopped.state == "open" && stopped.done >= progress && before.count >= Int(stopped.done))
        #expect(before.count < installation.members.count, "the run finished before it was interrupted")

        let (status, output) = try run(installation, arguments, name: "backfill-resumed")
        #expect(status == 0, "\(output.suffix(2000))")
        #expect(output.contains("resuming run 1 (session 2): members up to \(stopped.checkpoint) are done"), "\(output.prefix(2000))")
        #expect(output.contains("catch-up: "), "\(output.suffix(2000))")
        let after = try generatedAt(installation)
        let redone = before.filter { after[$0.key] != $0.value }.map(\.key)
        #expect(redone.isEmpty, "\(redone.count) members finished before the interruption were rebuilt again: \(redone.prefix(5))")
        #expect(after.count == installation.members.count)
        let finished = try #require(try runRow(installation))
        #expect(finished.state == "finished")
        #expect(finished.done + finished.skipped == Int64(installation.members.count), "\(finished)")
        if signal == SIGINT {
            #expect(finished.done == Int64(installation.members.count), "a graceful stop leaves no finished member beyond the checkpoint")
        }
        try WorkerChecks.expectAllSetsCorrect(installation)
    }

    @Test("SIGINT: the members in flight finish, the checkpoint is saved, exit 130; the same command resumes and redoes nothing")
    func interruptedBySIGINT() async throws {
        try await onThread("interruptedBySIGINT") { try Self.interruptAndResume(signal: SIGINT, progress: 200) }
    }

    @Test("SIGKILL mid-run: the same command resumes from the checkpoint and redoes nothing")
    func killedBySIGKILL() async throws {
        try await onThread("killedBySIGKILL") { try Self.interruptAndResume(signal: SIGKILL, progress: 300) }
    }

    @Test("--dry-run prints the plan per shard and changes nothing; a plan over a shard's budget is refused with exit 3 and writes nothing")
    func dryRunAndBudget() async throws {
        try await onThread("dryRunAndBudget") {
            let installation = try Installation(memberLimit: 300)
            let before = try StoreSnapshot(installation)
            let dry = try Self.run(installation, ["backfill", "--dormant-for", "90d", "--now", Self.now, "--dry-run"], name: "dry")
            #expect(dry.status == 0, "\(dry.output)")
            #expect(dry.output.contains("dry run: nothing was changed"))
            #expect(dry.output.contains("selection: dormant for 90d (last active before 2026-08-03T00:00:00Z or never active"), "\(dry.output)")
            #expect(dry.output.components(separatedBy: "\n").filter { $0.hasPrefix("  shard ") }.count == 3, "\(dry.output)")
            let evictDry = try Self.run(installation, ["evict", "--dormant-for", "180d", "--now", Self.now, "--dry-run"], name: "evict-dry")
            #expect(evictDry.status == 0, "\(evictDry.output)")
            #expect(try StoreSnapshot(installation) == before, "a dry run changed something")

            let budget = try Self.run(installation, ["shards", "budget", "2", "1MB"], name: "budget")
            #expect(budget.status == 0 && budget.output.contains("shard 2: memory budget 1.0 MB"), "\(budget.output)")
            let budgeted = try StoreSnapshot(installation)
            let refused = try Self.run(installation, ["backfill", "--all", "--now", Self.now], name: "refused")
            #expect(refused.status == 3, "\(refused.output)")
            #expect(refused.output.contains("would not fit") && refused.output.contains("shard 2 (redis://"), "\(refused.output)")
            #expect(try StoreSnapshot(installation) == budgeted, "a refused run wrote something")
        }
    }

    @Test("without KINDRED_QUEUE: evict and an in-process backfill run (the repair enqueue skipped, said); --via-queue is refused naming KINDRED_QUEUE; a malformed KINDRED_QUEUE is an error, never ignored")
    func withoutQueue() async throws {
        try await onThread("withoutQueue") {
            let installation = try Installation(memberLimit: 60)
            let noQueue: [String: String?] = ["KINDRED_QUEUE": nil]
            let evict = try Self.run(
                installation, ["evict", "--dormant-for", "180d", "--now", Self.now, "--dry-run"], name: "evict-no-queue",
                environment: noQueue)
            #expect(evict.status == 0, "\(evict.output)")
            #expect(!evict.output.contains("KINDRED_QUEUE"), "evict needs no queue: \(evict.output)")
            let backfill = try Self.run(
                installation, ["backfill", "--all", "--now", Self.now, "--concurrency", "2"], name: "backfill-no-queue",
                environment: noQueue)
            #expect(backfill.status == 0, "\(backfill.output)")
            #expect(backfill.output.contains("no queue configured (KINDRED_QUEUE)"), "\(backfill.output)")
            #expect(try Self.generatedAt(installation).count > 0, "the backfill rebuilt nothing")
            // Evict's plan counts the scores it frees, under the deployment's N: with N = 1 every
            // set counts as full (N + S + its share of W), so the figures grow.
            let shardLines = { (output: String) in output.components(separatedBy: "\n").filter { $0.hasPrefix("  shard ") } }
            let scores = { (output: String) -> [Int] in
                shardLines(output).compactMap { $0.firstMatch(of: /set\(s\), ~(\d+) score\(s\)/).flatMap { Int($0.output.1) } }
            }
            let plan = try Self.run(
                installation, ["evict", "--dormant-for", "180d", "--now", Self.now, "--dry-run"], name: "evict-plan",
                environment: noQueue)
            #expect(
                plan.status == 0 && !shardLines(plan.output).isEmpty
                    && shardLines(plan.output).allSatisfy { $0.contains(" score(s), ~") && $0.hasSuffix(" freed") },
                "\(plan.output)")
            let planOneN = try Self.run(
                installation, ["evict", "--dormant-for", "180d", "--now", Self.now, "--dry-run"], name: "evict-plan-n1",
                environment: noQueue.merging(["KINDRED_TOP_N": "1"]) { $1 })
            let (base, oneN) = (scores(plan.output), scores(planOneN.output))
            #expect(planOneN.status == 0 && base.count == shardLines(plan.output).count && oneN.count == base.count)
            #expect(zip(oneN, base).allSatisfy { $0 >= $1 } && zip(oneN, base).contains { $0 > $1 }, "\(base) then \(oneN)")
            let viaQueue = try Self.run(
                installation, ["backfill", "--all", "--now", Self.now, "--via-queue", "--restart"], name: "via-queue-no-queue",
                environment: noQueue)
            #expect(viaQueue.status != 0, "\(viaQueue.output)")
            #expect(viaQueue.output.contains("KINDRED_QUEUE"), "\(viaQueue.output)")
            let malformed = try Self.run(
                installation, ["backfill", "--all", "--now", Self.now, "--restart"], name: "malformed-queue",
                environment: ["KINDRED_QUEUE": "not a url"])
            #expect(malformed.status != 0, "\(malformed.output)")
            #expect(malformed.output.contains("KINDRED_QUEUE"), "\(malformed.output)")
        }
    }
}
