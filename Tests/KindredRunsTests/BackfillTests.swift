import Foundation
import KindredCore
import KindredRuns
import KindredSupport
@testable import KindredTestKit
import MariaDBClient
@_spi(Testing) import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Testing
import TestSupport
import WorkQueue

/// Backfill and evict in-process, against real servers (the process
/// itself, signals and all, is in `BackfillProcessTests`).
@Suite("Backfill and evict", .serialized, .timeLimit(.minutes(10)))
struct BackfillTests {
    /// The fixtures' "now": last_active was measured back from it.
    static let asOf: Int64 = 1_793_491_200
    static let day: Int64 = 86_400

    /// Runs a backfill to its end (no stop) and returns its report.
    static func backfill(
        _ context: GenerationCore, _ selection: RunSelection, now: Int64 = asOf, concurrency: Int = 2,
        configure: (inout Backfill.Options) -> Void = { _ in }
    ) throws -> RunReport {
        var options = Backfill.Options(selection: selection, now: now, concurrency: concurrency)
        options.progressInterval = .milliseconds(50)
        configure(&options)
        return try Backfill(core: context, options: options).run(stop: StopSignal()) { _ in }
    }

    static func evict(_ context: GenerationCore, dormantFor days: Int64, dryRun: Bool = false) throws -> RunReport {
        var options = Evict.Options(selection: RunSelection(dormantFor: days * day), now: asOf)
        options.dryRun = dryRun
        options.topN = context.settings.scoring.topN
        options.progressInterval = .milliseconds(50)
        return try Evict(
            store: context.sessions.store, scores: context.scores, mysqlPauseLimit: context.settings.mysqlPauseLimit,
            logger: context.logger, directory: context.directory, options: options
        ).run(stop: StopSignal()) { _ in }
    }

    /// Each member's last_active as MySQL has it.
    static func lastActive(_ installation: Installation) throws -> [MemberID: Int64?] {
        let connection = try installation.connectMySQL()
        defer { connection.close() }
        var all: [MemberID: Int64?] = [:]
        for row in try connection.query("SELECT id, last_active FROM members WHERE deleted = 0") {
            all[MemberID(truncatingIfNeeded: row.uint(0) ?? 0)] = row.isNull(1) ? .some(nil) : .some(row.int(1))
        }
        return all
    }

    /// The stored sets of `ids` equal the engine's matches over the whole population.
    static func expectSetsCorrect(_ installation: Installation, _ ids: some Collection<MemberID>, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = try Installation.expectedMatches(installation.members, survey: installation.survey)
        let stored = try installation.storedSets()
        let wrong = ids.filter { stored[$0] != .some(expected[$0]) }
        #expect(wrong.isEmpty, "\(wrong.count) of \(ids.count) sets differ, e.g. \(wrong.prefix(5))", sourceLocation: sourceLocation)
    }

    @Test("each window selects exactly the members on its side of the boundary")
    func windowsAtTheBoundaries() async throws {
        try await onThread("windowsAtTheBoundaries") {
            let installation = try Installation(memberLimit: 200)
            let d90 = 90 * Self.day
            let since = Self.asOf - 30 * Self.day
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            // Members on each boundary and one second either side of it.
            let placed: [(MemberID, Int64?)] = [
                (1, Self.asOf - d90), (2, Self.asOf - d90 - 1), (3, Self.asOf - d90 + 1), (4, nil),
                (5, since), (6, since - 1), (7, Self.asOf - 2 * d90), (8, Self.asOf - 2 * d90 - 1), (9, Self.asOf),
            ]
            for (id, value) in placed {
                try connection.execute("UPDATE members SET last_active = ? WHERE id = ?", [value.map { .int($0) } ?? .null, .uint(UInt64(id))])
            }
            let (context, _) = try installation.core()
            let lastActive = try Self.lastActive(installation)
            let planner = BackfillPlanner(core: context)
            func selected(_ selection: RunSelection) throws -> Set<MemberID> {
                Set(try planner.plan(try selection.members(now: Self.asOf), after: 0, in: StoreSession(connection: connection, survey: installation.survey)).members.map(\.id))
            }
            let cases: [(String, RunSelection, included: [MemberID], excluded: [MemberID])] = [
                ("--active-within 90d", RunSelection(activeWithin: d90), [1, 3, 5, 6, 9], [2, 4, 7, 8]),
                ("--dormant-for 90d", RunSelection(dormantFor: d90), [2, 4, 7, 8], [1, 3, 5, 6, 9]),
                ("--since", RunSelection(since: since), [5, 9], [1, 2, 3, 4, 6]),
                ("--active-within 180d --dormant-for 90d", RunSelection(activeWithin: 2 * d90, dormantFor: d90), [2, 7], [1, 3, 4, 8, 9]),
                ("--ids", RunSelection(ids: [1, 4, 8, 999_999]), [1, 4, 8], [2, 3, 999_999]),
                ("--all", RunSelection(all: true), [1, 2, 3, 4, 5, 6, 7, 8, 9], []),
            ]
            for (name, selection, included, excluded) in cases {
                let got = try selected(selection)
                let members = try selection.members(now: Self.asOf)
                let expected = Set(lastActive.filter { id, value in
                    if case .ids(let ids) = members { return ids.contains(id) }
                    return members.admits(lastActive: value)
                }.keys)
                #expect(got == expected, "\(name): \(got.symmetricDifference(expected).sorted().prefix(10))")
                #expect(included.allSatisfy(got.contains), "\(name) leaves out one of \(included)")
                #expect(!excluded.contains(where: got.contains), "\(name) takes one of \(excluded)")
            }
            // The two sides of one duration split the population.
            #expect(try selected(RunSelection(activeWithin: d90)).union(try selected(RunSelection(dormantFor: d90))).count == lastActive.count)
        }
    }

    @Test("a partial backfill rebuilds exactly the selected members; a second run skips them; a changed member is rebuilt")
    func partialBackfill() async throws {
        try await onThread("partialBackfill") {
            let installation = try Installation(memberLimit: 300)
            let (context, _) = try installation.core()
            let selection = RunSelection(activeWithin: 90 * Self.day)
            let members = try selection.members(now: Self.asOf)
            let chosen = try Self.lastActive(installation).filter { members.admits(lastActive: $0.value) }.keys
            let report = try Self.backfill(context, selection)
            #expect(!report.interrupted && report.counts == RunProgress.Counts(done: chosen.count))
            #expect(report.notes.contains { $0.hasPrefix("catch-up: ") }, "\(report.notes)")
            try Self.expectSetsCorrect(installation, chosen)
            let stored = try installation.storedSets()
            #expect(stored.filter { $0.value != nil }.count == chosen.count, "only the selected members have sets")

            let again = try Self.backfill(context, selection)
            #expect(again.counts == RunProgress.Counts(skipped: chosen.count), "\(again.counts)")
            #expect(again.runID != report.runID, "a finished run is not resumed: a new one starts")

            // One selected member's set goes stale (answers changed), another's is lost from its shard.
            let repository = MemberRepository(connection: try installation.connectMySQL(), survey: installation.survey)
            let sorted = chosen.sorted()
            var changed = try #require(try repository.member(sorted[0]))
            changed.ageMax = max(changed.ageMin, changed.ageMax - 1)
            try repository.upsert([changed])
            let lost = sorted[1]
            let directory = try SessionDirectory(configuration: installation.mysqlConfiguration)
            try installation.scoreStore().removeSet(lost, shard: try #require(try directory.shard(of: lost)))
            let third = try Self.backfill(context, selection)
            #expect(third.counts == RunProgress.Counts(done: 2, skipped: chosen.count - 2), "\(third.counts)")
            #expect(third.planLines.contains { $0.contains("1 stale") && $0.contains("1 lost") }, "\(third.planLines)")
        }
    }

    @Test("rebuilding every member makes every set exact and weighs the shards evenly")
    func wholePopulation() async throws {
        try await onThread("wholePopulation") {
            let installation = try Installation(memberLimit: 250)
            let (context, _) = try installation.core()
            let report = try Self.backfill(context, RunSelection(all: true))
            #expect(report.counts.done == installation.members.count && report.counts.failed == 0)
            try Self.expectSetsCorrect(installation, installation.members.map(\.id))
            // Weights honoured: three shards of weight 1 share the new members evenly.
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            let perShard = try ShardCatalog(connection: connection).list().map(\.assignedMembers)
            #expect(perShard.max()! - perShard.min()! <= 1, "\(perShard)")
        }
    }

    @Test("backfill rebuilds own sets only; a later change is published into every set that ranks the member now")
    func publicationAfterBackfill() async throws {
        try await onThread("publicationAfterBackfill") {
            let installation = try Installation(memberLimit: 300)
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            // The import happened an hour ago: longer than the snapshot's overlap (a scan covers changes older than it).
            try connection.execute("UPDATE members SET changed_at = changed_at - INTERVAL 1 HOUR")
            let (context, _) = try installation.core { $0.scoring.topN = 8 }
            _ = try Self.backfill(context, RunSelection(all: true))
            let published = PublishedStore(connection: connection, survey: installation.survey)
            // Every set was scanned after the import: every member counts as published without a placement.
            let oldest = try #require(try published.oldestCoverage())
            #expect(try published.settleUnpublished(changedBefore: oldest) == installation.members.count)
            #expect(try published.needingPublication().isEmpty)
            // X changes answers to be widely compatible: the sets that rank X now, generated before the change,
            // take X in through X's publication (the worker's job), not through backfill.
            let repository = MemberRepository(connection: connection, survey: installation.survey)
            var changed = try #require(installation.members.first { $0.id == 1 })
            changed.answers = changed.answers.map { answer in
                var wide = answer
                wide.accepted = OptionSet8(range: 0...(installation.survey.optionCounts[answer.question] - 1))
                wide.importance = .mandatory
                return wide
            }
            try repository.upsert([changed])
            #expect(try published.needingPublication() == [1])
            let outcome = try Generator(core: context).process(1, ownSet: .always)
            #expect(outcome.publication.published && outcome.publication.count(.entered) > 0)
            #expect(outcome.publication.skippedCovered == 0, "every set was generated before the change")
            #expect(try published.needingPublication().isEmpty)
            let everyone = installation.members.map { $0.id == 1 ? changed : $0 }
            let expected = try Installation.expectedMatches(everyone, survey: installation.survey, settings: ScoringSettings(topN: 8))
            let stored = try installation.storedSets()
            for member in everyone { #expect(stored[member.id] == .some(expected[member.id]), "member \(member.id)") }

        }
    }

    @Test("--dry-run and a plan refused for the memory budget change nothing in MySQL or on any shard")
    func dryRunAndRefusal() async throws {
        try await onThread("dryRunAndRefusal") {
            let installation = try Installation(memberLimit: 300)
            let (context, _) = try installation.core()
            _ = try Self.backfill(context, RunSelection(activeWithin: 30 * Self.day))
            let before = try StoreSnapshot(installation)

            var options = Backfill.Options(selection: RunSelection(all: true), now: Self.asOf, concurrency: 2)
            options.dryRun = true
            let dry = try Backfill(core: context, options: options).run(stop: StopSignal()) { _ in }
            #expect(dry.dryRun && dry.planLines.contains { $0.contains("dry run: nothing was changed") })
            #expect(dry.planLines.filter { $0.hasPrefix("  shard ") }.count == 3, "\(dry.planLines)")
            _ = try Self.evict(context, dormantFor: 10, dryRun: true)
            #expect(try StoreSnapshot(installation) == before, "a dry run changed something")

            // Budgets just above what each shard uses now: the new sets do not fit.
            let connection = try installation.connectMySQL()
            let catalog = ShardCatalog(connection: connection)
            for shard in try catalog.list() {
                let used = try context.scores.shardStats(shard: shard.id).usedMemory
                try catalog.setMemoryBudget(shard.id, UInt64(used + 20_000))
            }
            connection.close()
            let budgeted = try StoreSnapshot(installation)
            let refusal = try #require(throws: RunRefusal.self) { try Self.backfill(context, RunSelection(all: true)) }
            #expect(refusal.kind == .memoryBudget)
            #expect(refusal.description.contains("would not fit") && refusal.description.contains("budget"), "\(refusal)")
            #expect(try StoreSnapshot(installation) == budgeted, "a refused run wrote something")
            options.dryRun = true
            #expect(throws: RunRefusal.self, "a dry run reports the refusal too") {
                try Backfill(core: context, options: options).run(stop: StopSignal()) { _ in }
            }
        }
    }

    @Test("evict drops dormant sets, shards and bookkeeping; the sweep leaves them alone; a login and a regeneration rebuild the set")
    func evictAndRebuild() async throws {
        try await onThread("evictAndRebuild") {
            let installation = try Installation(memberLimit: 300)
            let (context, _) = try installation.core()
            _ = try Self.backfill(context, RunSelection(all: true))
            let lastActive = try Self.lastActive(installation)
            let dormant = RunSelection(dormantFor: 180 * Self.day)
            let evicted = Set(lastActive.filter { try! dormant.members(now: Self.asOf).admits(lastActive: $0.value) }.keys)
            let kept = Set(lastActive.keys).subtracting(evicted)
            #expect(evicted.count > 50 && kept.count > 50)

            let report = try Self.evict(context, dormantFor: 180)
            #expect(report.counts == RunProgress.Counts(done: evicted.count), "\(report.counts)")
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            let stored = try installation.storedSets()
            #expect(evicted.allSatisfy { stored[$0] == .some(nil) }, "evicted members still have sets")
            for server in installation.shards {
                let keys = try server.connect().send(["KEYS", "scores:*"]).array?.compactMap(\.string) ?? []
                let owners = Set(keys.compactMap { key -> MemberID? in
                    guard let open = key.firstIndex(of: "{"), let close = key.firstIndex(of: "}") else { return nil }
                    return MemberID(key[key.index(after: open)..<close])
                })
                #expect(owners.isDisjoint(with: evicted), "keys of evicted members remain on a shard")
            }
            #expect(try connection.query("SELECT COUNT(*) FROM generations WHERE member_id IN (SELECT member_id FROM evictions)").first?.int(0) == 0)
            #expect(try connection.query("SELECT COUNT(*) FROM member_shards WHERE member_id IN (SELECT member_id FROM evictions)").first?.int(0) == 0)
            #expect(try connection.query("SELECT COUNT(*) FROM evictions WHERE cleared = 1").first?.int(0) == Int64(evicted.count))
            try Self.expectSetsCorrect(installation, kept)

            // The repair sweep, even with a window that covers them, leaves them alone.
            let generations = GenerationStore(connection: connection)
            #expect(try generations.repairCandidates(activeSince: Self.asOf - 800 * Self.day).isEmpty)
            // One of them logs in: the sweep wants them back, and the worker's job rebuilds the set.
            let returning = try #require(evicted.sorted().first { lastActive[$0]! != nil })
            // (Evictions are stamped with the wall clock, not the run's --now: a login comes after it.)
            let login = Int64(Date().timeIntervalSince1970) + 1
            try connection.execute("UPDATE members SET last_active = ? WHERE id = ?", [.int(login), .uint(UInt64(returning))])
            #expect(try generations.repairCandidates(activeSince: Self.asOf - 800 * Self.day) == [returning])
            context.directory.clearCache()
            guard try Generator(core: context).regenerate(returning).kind == .generated else {
                Issue.record("not generated")
                return
            }
            try Self.expectSetsCorrect(installation, [returning])
            #expect(try generations.repairCandidates(activeSince: Self.asOf - 800 * Self.day).isEmpty)
            // A worker whose directory cache still held the old shard assigns afresh (a row exists again).
            #expect(try connection.query("SELECT COUNT(*) FROM member_shards WHERE member_id = ?", [.uint(UInt64(returning))]).first?.int(0) == 1)
        }
    }

    @Test("evict's plan counts the scores full sets hold (N + S + a share of W), as the shards' metas count them")
    func evictPlanCountsStoredScores() async throws {
        try await onThread("evictPlanCountsStoredScores") {
            let installation = try Installation(memberLimit: 300)
            // N = 10: S = 16, W = 32, so a full set holds 26 to 58 scores; counting N alone would be ~60% low.
            let (context, _) = try installation.core { $0.scoring.topN = 10 }
            _ = try Self.backfill(context, RunSelection(all: true))
            let lastActive = try Self.lastActive(installation)
            let selection = try RunSelection(dormantFor: 180 * Self.day).members(now: Self.asOf)
            let dormant = lastActive.filter { selection.admits(lastActive: $0.value) }.keys.sorted()
            let directory = try SessionDirectory(configuration: installation.mysqlConfiguration)
            // What the plan should say per shard. A set that holds every candidate and fewer than N
            // is its match count, and a full set that does not hold every candidate holds what the
            // write stored: both are exactly the shard's count. A set holding every candidate and at
            // least N, fewer than the write would have stored, is counted as that write (MySQL does
            // not know how many candidates there were): the documented overestimate.
            var expected: [UInt32: (sets: Int, scores: Int)] = [:]
            var full = 0
            var overestimated = 0
            for member in dormant {
                let shard = try #require(try directory.shard(of: member))
                let meta = try #require(try context.scores.readMetas([member], shard: shard).first ?? nil, "member \(member)")
                var scores = meta.count
                if !meta.isComplete {
                    full += 1
                } else if meta.count >= 10 {
                    scores = context.scores.configuration.writtenSize(forLimit: 10, member: member)
                    overestimated += scores - meta.count
                }
                expected[shard, default: (0, 0)].sets += 1
                expected[shard, default: (0, 0)].scores += scores
            }
            // The premise: enough full sets that counting N for them would show.
            try #require(dormant.count > 50 && full >= 20, "\(full) of \(dormant.count) dormant sets are full")
            print("evict plan: \(full) of \(dormant.count) dormant sets full; \(overestimated) scores over in complete sets")

            let report = try Self.evict(context, dormantFor: 180, dryRun: true)
            var planned: [UInt32: (sets: Int, scores: Int)] = [:]
            for line in report.planLines {
                guard let match = line.firstMatch(of: /shard (\d+) \(.*\): (\d+) set\(s\), ~(\d+) score\(s\), ~.* freed/),
                    let shard = UInt32(match.output.1), let sets = Int(match.output.2), let scores = Int(match.output.3)
                else { continue }
                planned[shard] = (sets, scores)
            }
            #expect(planned.keys.sorted() == expected.keys.sorted(), "\(report.planLines)")
            for (shard, truth) in expected {
                #expect(planned[shard]?.sets == truth.sets && planned[shard]?.scores == truth.scores,
                    "shard \(shard): planned \(String(describing: planned[shard])), expected \(truth)")
            }
        }
    }

    @Test("an eviction stopped between MySQL and the shard is finished by the next evict")
    func unfinishedEviction() async throws {
        try await onThread("unfinishedEviction") {
            let installation = try Installation(memberLimit: 120)
            let (context, _) = try installation.core()
            _ = try Self.backfill(context, RunSelection(all: true))
            let lastActive = try Self.lastActive(installation)
            let victim = try #require(lastActive.keys.sorted().first { (lastActive[$0]! ?? 0) < Self.asOf - 200 * Self.day })
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            // The MySQL half only, as if the process died before the shard.
            let done = try EvictionStore(connection: connection).evict(
                [victim], dormantBefore: Self.asOf - 180 * Self.day, evictedAt: Self.asOf, run: nil)
            #expect(done.map(\.member) == [victim])
            let shard = try #require(done.first?.shard)
            #expect(try context.scores.existingSets([victim], shard: shard) == [victim], "the set is still there")
            let report = try Self.evict(context, dormantFor: 180)
            #expect(report.counts.failed == 0)
            #expect(try context.scores.existingSets([victim], shard: shard).isEmpty, "the next evict removed it")
            #expect(try connection.query("SELECT cleared FROM evictions WHERE member_id = ?", [.uint(UInt64(victim))]).first?.int(0) == 1)
        }
    }

    /// A slow backfill of everyone on its own thread, reporting into `messages`.
    static func slowBackfill(
        _ context: GenerationCore, stop: StopSignal, messages: RunMessages, checkpointInterval: Duration
    ) -> BackgroundThread<Result<RunReport, any Error>> {
        let options = {
            var options = Backfill.Options(selection: RunSelection(all: true), now: asOf, concurrency: 1, rate: 4)
            options.checkpointInterval = checkpointInterval
            options.progressInterval = .milliseconds(50)
            return options
        }()
        return BackgroundThread("slow-backfill") {
            Result { try Backfill(core: context, options: options).run(stop: stop, onEvent: messages.record) }
        }
    }

    /// Whether another session could take the lock of an `--all` backfill now.
    static func lockIsFree(_ installation: Installation) throws -> Bool {
        let connection = try installation.connectMySQL()
        defer { connection.close() }
        let store = BackfillRunStore(connection: connection)
        let key = RunSelection(all: true).key
        guard try store.lock(command: "backfill", key: key) else { return false }
        try store.unlock(command: "backfill", key: key)
        return true
    }

    @Test("a run takes its lock again when MySQL restarts under it, so a second run is still refused; the lock goes at the end")
    func lockSurvivesMySQLRestart() async throws {
        try await onThread("lockSurvivesMySQLRestart") {
            let installation = try Installation(dedicatedMySQL: true, memberLimit: 200)
            let (context, _) = try installation.core()
            let stop = StopSignal()
            let messages = RunMessages()
            let run = Self.slowBackfill(context, stop: stop, messages: messages, checkpointInterval: .milliseconds(100))
            defer { stop.stop() }
            #expect(messages.wait(for: ": started"), "\(messages.all)")
            #expect(try !Self.lockIsFree(installation), "the run holds its lock")

            try installation.mysqlServer.restart()  // the run's session, and with it the lock, is gone
            #expect(messages.wait(for: "took the run's lock again"), "\(messages.all)")
            #expect(try !Self.lockIsFree(installation), "after the restart the run holds its lock again")
            let refused = Result {
                try Backfill(core: context, options: Backfill.Options(selection: RunSelection(all: true), now: Self.asOf, concurrency: 1))
                    .run(stop: StopSignal()) { _ in }
            }
            guard case .failure(let error as RunRefusal) = refused else {
                Issue.record("a second run with the same selection was not refused: \(refused)")
                return
            }
            #expect(error.kind == .busy)

            // The run kept working through the restart (under load it may not have finished anyone before it).
            #expect(messages.wait(finished: 1), "\(messages.all)")
            stop.stop()
            let report = try run.result(timeout: .seconds(60)).get()
            #expect(report.interrupted && report.counts.done > 0, "\(report.counts)")
            #expect(try Self.lockIsFree(installation), "the stopped run released its lock")
        }
    }

    @Test("a run whose lock was taken by another session while MySQL restarted stops and writes no checkpoint")
    func lockLostToAnotherRun() async throws {
        try await onThread("lockLostToAnotherRun") {
            let installation = try Installation(dedicatedMySQL: true, memberLimit: 200)
            let (context, _) = try installation.core()
            let stop = StopSignal()
            let messages = RunMessages()
            // No checkpoint until the run ends, so the run's session is idle while MySQL restarts.
            let run = Self.slowBackfill(context, stop: stop, messages: messages, checkpointInterval: .seconds(3600))
            defer { stop.stop() }
            #expect(messages.wait(finished: 2), "\(messages.all)")
            try installation.mysqlServer.restart()
            let intruder = try installation.connectMySQL()
            defer { intruder.close() }
            #expect(try BackfillRunStore(connection: intruder).lock(command: "backfill", key: RunSelection(all: true).key))

            stop.stop()
            let outcome = try run.result(timeout: .seconds(60))
            guard case .failure(let error as RunRefusal) = outcome else {
                Issue.record("the run kept going without its lock: \(outcome)")
                return
            }
            #expect(error.kind == .busy && error.description.contains("lost the run's lock"), "\(error)")
            let open = try #require(try BackfillRunStore(connection: intruder).openRun(command: "backfill", key: RunSelection(all: true).key))
            #expect(open.checkpoint == 0 && open.done == 0, "no checkpoint was written after the lock was lost (members were rebuilt)")
        }
    }

    @Test("--via-queue enqueues exactly the members to rebuild at backfill priority")
    func viaQueue() async throws {
        try await onThread("viaQueue") {
            let installation = try Installation(memberLimit: 200)
            let (context, _) = try installation.core()
            let selection = RunSelection(dormantFor: 90 * Self.day)
            let members = try selection.members(now: Self.asOf)
            let chosen = try Self.lastActive(installation).filter { members.admits(lastActive: $0.value) }.keys
            let report = try Self.backfill(context, selection) { $0.viaQueue = true }
            #expect(report.counts.done == chosen.count && !report.interrupted)
            let stats = try WorkQueue().stats(on: QueueConnection(try installation.queueServer.connect()))
            #expect(stats.waiting[.backfill] == chosen.count && stats.waiting[.interactive] == 0)
            #expect(report.notes.contains { $0.contains("\(chosen.count) new") }, "\(report.notes)")
        }
    }
}

/// A run's event messages, for a test to wait on (bounded).
final class RunMessages: @unchecked Sendable {
    // @unchecked Sendable: `lines` is guarded by `condition`'s lock.
    private let condition = NSCondition()
    private var lines: [String] = []
    private var finished = 0

    func record(_ event: RunEvent) {
        condition.lock()
        defer { condition.unlock() }
        switch event {
        case .message(let line): lines.append(line)
        case .progress(let status), .finalProgress(let status): finished = max(finished, status.finished)
        }
        condition.broadcast()
    }

    /// Waits up to `timeout` until the run reported at least `count` members finished.
    func wait(finished count: Int, timeout: TimeInterval = 60) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while finished < count {
            if !condition.wait(until: deadline) { return finished >= count }
        }
        return true
    }

    /// Waits up to `timeout` for a message containing `text`; true when one came.
    func wait(for text: String, timeout: TimeInterval = 60) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while !lines.contains(where: { $0.contains(text) }) {
            if !condition.wait(until: deadline) { return lines.contains(where: { $0.contains(text) }) }
        }
        return true
    }

    var all: [String] {
        condition.lock()
        defer { condition.unlock() }
        return lines
    }
}

/// Every row of Kindred's tables and every key (with its serialized value)
/// of every shard: equal snapshots mean nothing was written.
struct StoreSnapshot: Equatable {
    var tables: [String: [Row]] = [:]
    var shards: [[String: [UInt8]]] = []

    init(_ installation: Installation) throws {
        let connection = try installation.connectMySQL()
        defer { connection.close() }
        for table in [
            "members", "blocks", "survey_questions", "shards", "member_shards", "generations", "backfill_runs",
            "backfill_failures", "evictions", "schema_migrations",
        ] {
            tables[table] = try connection.query("SELECT * FROM \(table) ORDER BY 1, 2")
        }
        for server in installation.shards {
            let redis = try server.connect()
            let keys = (try redis.send(["KEYS", "*"]).array ?? []).compactMap(\.string).sorted()
            var values: [String: [UInt8]] = [:]
            for start in stride(from: 0, to: keys.count, by: 1000) {
                let chunk = Array(keys[start..<min(keys.count, start + 1000)])
                let replies = redis.pipeline(chunk.map { ["DUMP", $0] })
                for (key, reply) in zip(chunk, replies) {
                    values[key] = (try reply.get()).bytes ?? []
                }
            }
            shards.append(values)
        }
    }
}
