import Foundation
import KindredCore
import KindredSupport
import Logging
import MemberStore
import ScoreStore
import Scoring

/// `kindred evict`: drops the sets of members dormant for a given time, to
/// give their memory back, safely on a live system.
///
/// For each selected member that holds a shard or a generation (ascending
/// ids, in batches): one MySQL transaction re-checks that they are still
/// dormant (rows read `FOR UPDATE`, so a login either lands first and the
/// member is skipped, or waits), records the eviction (`evictions`: which
/// shards), forgets their generation and releases their shard; then their
/// set is removed from the shard(s) and the eviction marked cleared. The
/// repair sweep leaves evicted members alone until they are active again;
/// a login or a read rebuilds their set on demand (the worker on enqueue,
/// the web backend on a read).
///
/// Resumable like ``Backfill``: the run's checkpoint is in MySQL; an
/// eviction whose removal the shard never confirmed (stopped in between, or
/// the shard was down) is finished by the next evict.
package final class Evict: Sendable {
    package struct Options: Sendable {
        /// Only `dormantFor` (required).
        package var selection: RunSelection
        package var now: Int64
        /// Members per second at most (nil: no cap).
        package var rate: Double?
        package var dryRun = false
        package var restart = false
        /// Members per MySQL transaction and pipelined removal.
        package var batchSize = 200
        package var checkpointInterval: Duration = .milliseconds(500)
        package var progressInterval: Duration = .milliseconds(200)
        /// The deployment's N (`top_n`): a set generated full (N matches)
        /// holds N + S + its share of W entries, which the plan's estimate
        /// of what is freed counts.
        package var topN = ScoringSettings.default.topN

        package init(selection: RunSelection, now: Int64, rate: Double? = nil) {
            self.selection = selection
            self.now = now
            self.rate = rate
        }
    }

    /// How each of the run's threads reaches MySQL (its own session each).
    package let store: StoreConfiguration
    /// The score store the sets are removed from (its layout sizes the plan).
    package let scores: ScoreStore
    /// How long a thread waits out MySQL being unreachable before it fails a batch.
    package let mysqlPauseLimit: Duration
    /// This process's shard directory cache, when it keeps one (a web or
    /// worker process in tests); evicted members are forgotten in it.
    package let directory: ShardDirectory?
    package let logger: Logger
    package let options: Options
    static let command = "evict"

    /// An evict needs no snapshot, survey, queue or metrics: only MySQL
    /// sessions and the score store.
    package init(
        store: StoreConfiguration, scores: ScoreStore, mysqlPauseLimit: Duration, logger: Logger,
        directory: ShardDirectory? = nil, options: Options
    ) {
        precondition(options.selection.dormantFor != nil && options.selection.activeWithin == nil
            && options.selection.since == nil && options.selection.ids == nil && !options.selection.all,
            "evict selects by --dormant-for only")
        precondition((1...EvictionStore.chunkSize).contains(options.batchSize))
        self.store = store
        self.scores = scores
        self.mysqlPauseLimit = mysqlPauseLimit
        self.directory = directory
        self.logger = logger
        self.options = options
    }

    struct Plan {
        var members: [(id: MemberID, needsWork: Bool)] = []
        /// Evictions to finish (their removal was never confirmed).
        var unfinished: [MemberID: Eviction] = [:]
        var toEvict = 0
        var nothingStored = 0
        /// Sets, estimated scores and estimated bytes freed per shard.
        var perShard: [UInt32: (sets: Int, scores: Int, bytes: Int)] = [:]
    }

    /// Plans, then evicts (or, dry, only reports). Blocking.
    package func run(stop: StopSignal, onEvent: @escaping (RunEvent) -> Void) throws -> RunReport {
        let started = ContinuousClock.now
        let database = RunSession(store: store, logger: logger, onEvent: onEvent)
        defer { database.close() }
        let key = options.selection.key
        let open = try database.claimRun(
            command: Self.command, key: key, program: "evict", dryRun: options.dryRun, restart: options.restart)
        let now = open?.now ?? options.now
        let selection = try options.selection.members(now: now)
        guard case .activity(nil, let cutoff?) = selection else { preconditionFailure("evict selects by dormancy") }
        let checkpoint = open?.checkpoint ?? 0
        let plan = try database.run { try makePlan(selection, after: checkpoint, in: $0) }
        var lines = ["selection: \(options.selection.describe(now: now))"]
        if let open {
            lines.append(
                "resuming run \(open.id) (session \(open.sessions + 1)): members up to \(open.checkpoint) are done "
                    + "(\(open.done) evicted, \(open.skipped) skipped, \(open.failed) failed)")
        }
        lines.append(
            "selected \(plan.members.count) dormant member(s): \(plan.toEvict) hold a set or a shard (to evict), "
                + "\(plan.nothingStored) hold nothing (skipped)"
                + (plan.unfinished.isEmpty ? "" : "; \(plan.unfinished.count) earlier eviction(s) to finish on their shard"))
        let shards = try database.run { try $0.shards.list() }
        for shard in shards {
            guard let share = plan.perShard[shard.id] else { continue }
            lines.append(
                "  shard \(shard.id) (\(shard.address)): \(share.sets) set(s), ~\(share.scores) score(s), "
                    + "~\(Bytes.text(share.bytes)) freed")
        }
        if options.dryRun {
            lines.append("dry run: nothing was changed")
            return RunReport(
                runID: open?.id, dryRun: true, interrupted: false, counts: RunProgress.Counts(), session: RunProgress.Counts(),
                elapsed: ContinuousClock.now - started, failureReasons: [], planLines: lines, notes: [])
        }
        for line in lines { onEvent(.message(line)) }
        let run = try database.beginRun(
            resuming: open, command: Self.command, key: key, selection: options.selection.describe(now: now), now: now,
            planned: plan.toEvict + plan.unfinished.count)
        let committed = RunProgress.Counts(done: run.done, skipped: run.skipped, gone: run.gone, failed: run.failed)
        let shared = SharedProgress(
            RunProgress(members: plan.members, checkpoint: run.checkpoint, committed: committed),
            total: committed.done + committed.gone + committed.failed + plan.toEvict + plan.unfinished.count)
        let follower = RunFollower(
            run: run, database: database, checkpointInterval: options.checkpointInterval,
            progressInterval: options.progressInterval)
        let worker = EvictWorker(evict: self, runID: run.id, cutoff: cutoff, unfinished: plan.unfinished)
        let thread = startThread(name: "evict") { worker.run(shared, stop: stop) }
        follower.follow(shared, stop: stop, onEvent: onEvent) { thread.join(timeout: $0) }
        let progress = try database.endSession(of: run, follower: follower, shared: shared)
        return RunReport(
            runID: run.id, dryRun: false, interrupted: !progress.isComplete, counts: progress.finished,
            session: RunProgress.Counts(
                done: progress.finished.done - committed.done, skipped: progress.finished.skipped - committed.skipped,
                gone: 0, failed: progress.finished.failed - committed.failed),
            elapsed: ContinuousClock.now - started,
            failureReasons: database.failureReasons(of: run, shared: shared),
            planLines: lines,
            notes: ["evicted members keep their place in others' sets; their own set is rebuilt when they log in or are read"])
    }

    /// The scores a member's set holds, from MySQL's record of its last
    /// whole write: a set generated with fewer than N matches holds every
    /// candidate (its match count); a full one holds what the write stored,
    /// N + S + the member's share of W (``ScoreStore/Configuration/writtenSize(forLimit:member:)``),
    /// which placements move within N + S...N + S + W. Counting N alone
    /// put a full set ~17% low at N = 5000.
    func storedScores(_ member: MemberID, matchCount: Int) -> Int {
        guard matchCount >= options.topN else { return matchCount }
        // A set generated under a larger N than today's was written for that N.
        return scores.configuration.writtenSize(forLimit: matchCount, member: member)
    }

    /// The dormant members above `checkpoint`, with unfinished evictions merged in.
    func makePlan(_ selection: MemberSelection, after checkpoint: MemberID, in session: StoreSession) throws -> Plan {
        var plan = Plan()
        let repository = session.members
        let layout = scores.configuration.layout
        let largest = try repository.largestID()
        var after = checkpoint
        while true {
            let page = try session.evictions.unclearedEvictions(after: after, limit: 10_000)
            guard let last = page.last else { break }
            for eviction in page { plan.unfinished[eviction.member] = eviction }
            after = last.member
        }
        var members: [MemberID: Bool] = [:]
        for id in plan.unfinished.keys { members[id] = true }
        for eviction in plan.unfinished.values {
            for shard in eviction.shards { plan.perShard[shard, default: (0, 0, 0)].sets += 1 }
        }
        after = checkpoint
        while true {
            let page = try repository.selectedMembers(selection, after: after, limit: 10_000)
            guard let last = page.last else { break }
            after = last.id
            for member in page where members[member.id] == nil {
                let stored = member.assignedShard != nil || member.generation != nil
                members[member.id] = stored
                if stored {
                    plan.toEvict += 1
                    if let shard = member.generation?.shard ?? member.assignedShard {
                        var share = plan.perShard[shard, default: (0, 0, 0)]
                        share.sets += 1
                        if let generation = member.generation {
                            let scores = storedScores(member.id, matchCount: generation.matchCount)
                            share.scores += scores
                            share.bytes += layout.estimatedBytes(ofSetWith: scores, largestID: largest)
                        }
                        plan.perShard[shard] = share
                    }
                } else {
                    plan.nothingStored += 1
                }
            }
        }
        plan.members = members.sorted { $0.key < $1.key }.map { (id: $0.key, needsWork: $0.value) }
        return plan
    }
}

/// The evicting thread: batches of members, MySQL first, then the shards.
struct EvictWorker {
    let evict: Evict
    var options: Evict.Options { evict.options }
    let runID: UInt32
    let cutoff: Int64
    let unfinished: [MemberID: Eviction]

    func run(_ shared: SharedProgress, stop: StopSignal) {
        let limiter = RateLimiter(rate: options.rate)
        let logger = evict.logger
        let database = RunSession(store: evict.store, logger: logger) { event in
            if case .message(let text) = event { logger.warning("\(text)") }
        }
        defer { database.close() }
        while !stop.isStopped {
            var batch: [MemberID] = []
            while batch.count < options.batchSize, let id = shared.next() { batch.append(id) }
            guard !batch.isEmpty else { return }
            guard limiter.wait(batch.count, stop: stop) else {
                for id in batch { shared.giveBack(id) }
                return
            }
            let fresh = batch.filter { unfinished[$0] == nil }
            let evicted: [Eviction]
            do {
                guard let result = try whileMySQLDown(database, stop: stop, limit: evict.mysqlPauseLimit, logger: logger, {
                    try $0.evictions.evict(fresh, dormantBefore: cutoff, evictedAt: unixNow(), run: runID)
                }) else {
                    for id in batch { shared.giveBack(id) }
                    return
                }
                evicted = result
            } catch {
                for id in batch { shared.finish(id, .failed("MySQL: \(error)")) }
                continue
            }
            let evictedIDs = Set(evicted.map(\.member))
            for id in fresh where !evictedIDs.contains(id) { shared.finish(id, .skipped) }
            if let directory = evict.directory {
                for eviction in evicted { directory.forget(eviction.member) }
            }
            let toClear = evicted + batch.compactMap { unfinished[$0] }
            let failures = removeSets(toClear, stop: stop)
            let cleared = toClear.map(\.member).filter { failures[$0] == nil }
            if !cleared.isEmpty {
                do {
                    _ = try whileMySQLDown(database, stop: stop, limit: evict.mysqlPauseLimit, logger: logger) {
                        try $0.evictions.markCleared(cleared)
                    }
                } catch {
                    // The sets are gone; an uncleared mark only makes the next evict unlink them again.
                    logger.warning("could not mark evictions cleared", metadata: ["error": "\(error)"])
                }
            }
            for id in cleared { shared.finish(id, .done) }
            for (id, reason) in failures { shared.finish(id, .failed(reason)) }
        }
    }

    /// Unlinks the sets, pipelined per shard, retrying a failing shard with
    /// backoff; returns the members whose set could not be removed, with why.
    private func removeSets(_ evictions: [Eviction], stop: StopSignal) -> [MemberID: String] {
        var byShard: [UInt32: [MemberID]] = [:]
        for eviction in evictions {
            for shard in eviction.shards { byShard[shard, default: []].append(eviction.member) }
        }
        var failures: [MemberID: String] = [:]
        for (shard, members) in byShard.sorted(by: { $0.key < $1.key }) {
            var backoff = Backoff(BackoffPolicy(initialDelay: .milliseconds(200), multiplier: 4, maxAttempts: 3))
            while true {
                do {
                    try evict.scores.removeSets(members, shard: shard)
                    break
                } catch {
                    guard let delay = backoff.next(), !stop.wait(delay) else {
                        for member in members {
                            failures[member] = "shard \(shard): \(error.code) (the set stays there until the next `kindred evict`)"
                        }
                        break
                    }
                }
            }
        }
        return failures
    }
}
