import Foundation
import KindredCore
import KindredLogging
import KindredSupport
import Logging
import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Synchronization
import WorkQueue

/// `kindred backfill`: rebuilds the sets of the selected members whose set
/// is missing or stale, by their last activity, safely on a live system.
///
/// 1. Plan (reads only): the selected members above the run's checkpoint,
///    which of them need a set and why, the shard each set goes to (its
///    assignment, or the one ``ShardPicker`` will give it), and the memory
///    the new sets take against each shard's budget. A plan that does not
///    fit is refused before anything is written; `dryRun` stops here.
/// 2. Run: members in ascending id order, each through a ``Generator`` (the
///    worker's own job without its publication: read, scan, assign, write,
///    record, catch-up; the members' own changes are the worker's to
///    publish, and a rebuild changes no other set) on
///    `concurrency` plain threads, at most `rate` a second; or, with
///    `viaQueue`, enqueued at backfill priority for the running daemons.
/// 3. Checkpoint: the run's row in MySQL keeps the highest id below which
///    every selected member is done, and the counts of those members; a run
///    started again with the same selection resumes from it. A member after
///    the checkpoint that was finished before a crash is current by then,
///    so the new plan skips it: nothing is rebuilt twice.
///
/// Stopping (``StopSignal``): no new member starts; the members in flight
/// finish; the checkpoint is saved; the report says `interrupted`.
package final class Backfill {
    package struct Options: Sendable {
        package var selection: RunSelection
        /// The instant windows are measured from, for a new run (a resumed
        /// run keeps its own).
        package var now: Int64
        package var concurrency: Int
        /// Members per second at most (nil: no cap).
        package var rate: Double?
        package var dryRun = false
        /// Abandon an open run of the same selection and start over.
        package var restart = false
        /// Enqueue for the daemons instead of rebuilding in this process.
        package var viaQueue = false
        /// How often the checkpoint is saved while members finish.
        package var checkpointInterval: Duration = .milliseconds(500)
        /// How often progress is reported.
        package var progressInterval: Duration = .milliseconds(200)

        package init(selection: RunSelection, now: Int64, concurrency: Int, rate: Double? = nil) {
            precondition(concurrency >= 1)
            self.selection = selection
            self.now = now
            self.concurrency = concurrency
            self.rate = rate
        }

        var command: String { viaQueue ? "backfill:queue" : "backfill" }
    }

    package let core: GenerationCore
    /// The queue a run enqueues into (with `--via-queue`, and the sets that
    /// fell below N for repair), over the connection the core's session
    /// factory opens when it was given the queue's address.
    package let queue: WorkQueue
    package let options: Options
    /// Where the generators' phase timings go (the core's metrics must
    /// have been made with it), for the summary's breakdown.
    package let phases: PhaseTotals?
    package init(core: GenerationCore, queue: WorkQueue = WorkQueue(), options: Options, phases: PhaseTotals? = nil) {
        self.core = core
        self.queue = queue
        self.options = options
        self.phases = phases
    }

    /// Plans, then runs (or, dry, only reports). Blocking: call it from a
    /// thread of its own.
    /// - Throws: ``RunRefusal`` (nothing written), ``SelectionError``, or a
    ///   store error that outlasted the retries.
    package func run(stop: StopSignal, onEvent: @escaping (RunEvent) -> Void) throws -> RunReport {
        let started = ContinuousClock.now
        if options.viaQueue && core.sessions.queue == nil {
            throw RunRefusal(
                .configuration, "--via-queue needs the queue's address: set KINDRED_QUEUE (or \"queue\" in the config file)")
        }
        let database = RunSession(store: core.sessions.store, logger: core.logger, onEvent: onEvent)
        defer { database.close() }
        let command = options.command
        let key = options.selection.key
        let open = try database.claimRun(
            command: command, key: key, program: "backfill", dryRun: options.dryRun, restart: options.restart)
        let now = open?.now ?? options.now
        let selection: MemberSelection
        do {
            selection = try options.selection.members(now: now)
        } catch {
            throw RunRefusal(.selection, error.description)
        }
        let checkpoint = open?.checkpoint ?? 0
        let plan = try database.run { try BackfillPlanner(core: core).plan(selection, after: checkpoint, in: $0) }
        var lines = describe(plan, selection: options.selection.describe(now: now), open: open)
        let problems = plan.budgetProblems
        if !problems.isEmpty {
            lines.append("refused: the selected sets would not fit the shards' memory budgets; nothing was written:")
            lines += problems.map { "  " + $0 }
            lines.append("  raise a budget (`kindred shards budget ID SIZE`), add a shard, or select fewer members")
        }
        if options.dryRun {
            lines.append("dry run: nothing was changed")
            if !problems.isEmpty { throw RunRefusal(.memoryBudget, lines.joined(separator: "\n")) }
            return RunReport(
                runID: open?.id, dryRun: true, interrupted: false, counts: RunProgress.Counts(), session: RunProgress.Counts(),
                elapsed: ContinuousClock.now - started, failureReasons: [], planLines: lines, notes: [])
        }
        if !problems.isEmpty { throw RunRefusal(.memoryBudget, lines.joined(separator: "\n")) }
        for line in lines { onEvent(.message(line)) }

        let run = try database.beginRun(
            resuming: open, command: command, key: key, selection: options.selection.describe(now: now), now: now,
            planned: plan.work)
        let committed = RunProgress.Counts(done: run.done, skipped: run.skipped, gone: run.gone, failed: run.failed)
        let shared = SharedProgress(
            RunProgress(members: plan.members, checkpoint: run.checkpoint, committed: committed),
            total: committed.done + committed.gone + committed.failed + plan.work)
        var notes: [String] = []
        if options.viaQueue {
            notes += try enqueue(shared, stop: stop, run: run, database: database, onEvent: onEvent)
        } else {
            let rebuild = rebuild(shared, stop: stop, run: run, database: database, onEvent: onEvent)
            notes.append(
                "catch-up: \(rebuild.catchUp) placement(s) of members who changed while their set was written; "
                    + "\(rebuild.queued.count) set(s) that fell below N "
                    + (core.sessions.queue == nil ? "(not queued for repair: no queue configured)" : "queued for repair"))
        }
        let progress = try database.endSession(of: run, follower: follower(run, database), shared: shared)
        if !options.viaQueue {
            notes += phaseLines(session: shared.progress.finished.done - committed.done)
        }
        let elapsed = ContinuousClock.now - started
        return RunReport(
            runID: run.id, dryRun: false, interrupted: !progress.isComplete, counts: progress.finished,
            session: RunProgress.Counts(
                done: progress.finished.done - committed.done, skipped: progress.finished.skipped - committed.skipped,
                gone: progress.finished.gone - committed.gone, failed: progress.finished.failed - committed.failed),
            elapsed: elapsed, failureReasons: database.failureReasons(of: run, shared: shared), planLines: lines,
            notes: notes)
    }

    // MARK: - Rebuilding in this process

    /// Runs the pool until every member is finished or `stop` is set;
    /// returns the catch-up placements and the sets found needing a rebuild
    /// (queued at repair priority when the queue is reachable).
    private func rebuild(
        _ shared: SharedProgress, stop: StopSignal, run: BackfillRunRecord, database: RunSession,
        onEvent: @escaping (RunEvent) -> Void
    ) -> (catchUp: Int, queued: Set<MemberID>) {
        let limiter = RateLimiter(rate: options.rate)
        let core = self.core
        let totals = RebuildTotals()
        let threads = (0..<options.concurrency).map { index in
            startThread(name: "backfill-\(index)", stackSize: 1 << 20) {
                // This thread's own session (MySQL only: the queue is never opened), closed when the thread ends.
                let session = core.sessions.thread(.task)
                defer { session.close() }
                let generator = Generator(core: core, options: Generator.Options(publish: false), session: session.store)
                let worker = BackfillWorker(core: core, generator: generator, index: index)
                while limiter.wait(stop: stop), let id = shared.next() {
                    switch worker.process(id, stop: stop) {
                    case .finished(let result, let outcome):
                        if let outcome { totals.add(outcome) }
                        shared.finish(id, result)
                    case .stopped:
                        shared.giveBack(id)
                    }
                }
            }
        }
        follower(run, database).follow(shared, stop: stop, onEvent: onEvent) { ThreadHandle.join(threads, timeout: $0) }
        let (catchUp, rebuild) = totals.total
        if !rebuild.isEmpty && core.sessions.queue == nil {
            onEvent(.message(
                "no queue configured (KINDRED_QUEUE): \(rebuild.count) set(s) that need a rebuild were not queued for repair "
                    + "(the worker's set audit finds them; or run the backfill again)"))
        } else if !rebuild.isEmpty {
            do {
                let session = core.sessions.thread(.task)
                defer { session.close() }
                _ = try session.queue { try queue.enqueue(rebuild.sorted(), priority: .repair, on: $0) }
            } catch {
                onEvent(.message("could not queue \(rebuild.count) set(s) that need a rebuild (the audit finds them): \(error)"))
            }
        }
        return (catchUp, rebuild)
    }

    private func follower(_ run: BackfillRunRecord, _ database: RunSession) -> RunFollower {
        RunFollower(
            run: run, database: database, checkpointInterval: options.checkpointInterval,
            progressInterval: options.progressInterval)
    }

    // MARK: - Through the queue

    private func enqueue(
        _ shared: SharedProgress, stop: StopSignal, run: BackfillRunRecord, database: RunSession,
        onEvent: @escaping (RunEvent) -> Void
    ) throws -> [String] {
        let limiter = RateLimiter(rate: options.rate)
        let core = self.core
        let queue = self.queue
        let result = QueueTotals()
        let thread = startThread(name: "backfill-enqueue") {
            let session = core.sessions.thread(.task)
            defer { session.close() }
            var backoff = Backoff(BackoffPolicy(initialDelay: .milliseconds(200), maximumDelay: .seconds(10)))
            while !stop.isStopped {
                var batch: [MemberID] = []
                while batch.count < 500, let id = shared.next() { batch.append(id) }
                guard !batch.isEmpty else { break }
                guard limiter.wait(batch.count, stop: stop) else {
                    for id in batch { shared.giveBack(id) }
                    break
                }
                while true {
                    do {
                        let connection = try session.openQueue().connection
                        let outcome = try queue.enqueue(batch, priority: .backfill, on: connection)
                        result.add(outcome)
                        for id in batch { shared.finish(id, .done) }
                        backoff.reset()
                        break
                    } catch {
                        session.dropQueue()
                        let delay = backoff.next()!  // unbounded: never nil
                        core.logger.warning("queue unavailable: retrying", metadata: ["error": "\(error)", "retry_in_ms": .milliseconds(delay)])
                        if stop.wait(delay) {
                            for id in batch { shared.giveBack(id) }
                            return
                        }
                    }
                }
            }
        }
        follower(run, database).follow(shared, stop: stop, onEvent: onEvent) { thread.join(timeout: $0) }
        let totals = result.total
        return [
            "queued at backfill priority for the worker daemons: \(totals.enqueued) new, \(totals.promoted) promoted, "
                + "\(totals.alreadyWaiting) already waiting, \(totals.alreadyDelayed) already delayed; the daemons rebuild them: "
                + "follow with `kindred status` or `kindred queue stats`"
        ]
    }

    // MARK: - Reporting

    private func describe(_ plan: BackfillPlan, selection: String, open: BackfillRunRecord?) -> [String] {
        var lines = ["selection: \(selection)"]
        if let open {
            lines.append(
                "resuming run \(open.id) (session \(open.sessions + 1)): members up to \(open.checkpoint) are done "
                    + "(\(open.done) rebuilt, \(open.skipped) skipped, \(open.gone) gone, \(open.failed) failed)")
        }
        let reasons = plan.reasons
        lines.append(
            "selected \(plan.members.count) live member(s)\(open == nil ? "" : " above member \(open!.checkpoint)"): "
                + "\(plan.current) with a current set (skipped), \(plan.work) to rebuild "
                + "(\(reasons.missing) missing, \(reasons.stale) stale, \(reasons.misplaced) misplaced, \(reasons.lost) lost from their shard)")
        if plan.work > 0 {
            lines.append(
                "estimated set: ~\(Int(plan.estimatedMatches.rounded())) stored entries (mean of \(plan.sampled) sampled scans), "
                    + "~\(Bytes.text(plan.bytesPerSet)) each on a shard (\(core.scores.configuration.layout.buckets) buckets)")
        }
        for share in plan.shares where share.sets > 0 || share.shard.memoryBudget != nil {
            let used = share.usedMemory.map { Bytes.text($0) } ?? "unknown"
            let projected = share.projectedMemory.map { Bytes.text($0) } ?? "unknown"
            let budget = share.shard.memoryBudget.map { Bytes.text(Int($0)) } ?? "no budget"
            lines.append(
                "  shard \(share.shard.id) (\(share.shard.address), weight \(share.shard.weight), \(share.shard.state.rawValue)): "
                    + "\(share.sets) set(s) (\(share.assigned) assigned, \(share.newlyAssigned) newly assigned), "
                    + "+\(Bytes.text(share.addedBytes - share.replacedBytes)); used \(used) -> \(projected) of \(budget)")
        }
        if plan.work > 0 {
            lines.append(
                options.viaQueue
                    ? "mode: enqueue at backfill priority for the worker daemons"
                    : "mode: \(options.concurrency) generation thread(s) in this process"
                        + (options.rate.map { ", at most \(Int($0)) members/s" } ?? ""))
        }
        return lines
    }

    private func phaseLines(session: Int) -> [String] {
        guard let phases, session > 0 else { return [] }
        let totals = phases.snapshot.filter { $0.count > 0 && $0.phase != "remove" }
        let sum = totals.reduce(0.0) { $0 + $1.total.inSeconds }
        guard sum > 0 else { return [] }
        let parts = totals.map { phase in
            phase.phase + String(format: " %.2f ms (%.0f%%)", phase.total.inSeconds * 1000 / Double(phase.count), 100 * phase.total.inSeconds / sum)
        }
        return ["where a member's time went (mean per phase, across \(options.concurrency) thread(s)): " + parts.joined(separator: ", ")]
    }
}

/// One generation thread's member loop: the worker's failure handling
/// without a queue. MySQL unavailable: pause with backoff and try the
/// same member again (no attempt counted). A shard unavailable or another
/// failure: up to three attempts with backoff. Bad stored data: fails at once.
struct BackfillWorker {
    enum Outcome {
        case finished(MemberResult, GenerationOutcome?)
        /// Stopped before the member could be done: hand it back.
        case stopped
    }

    let core: GenerationCore
    let generator: Generator
    let index: Int
    static let attempts = 3

    func process(_ id: MemberID, stop: StopSignal) -> Outcome {
        var mysqlPause = Backoff(BackoffPolicy(initialDelay: .milliseconds(500), maximumDelay: max(.milliseconds(500), core.settings.mysqlPauseLimit)))
        var retry = Backoff(BackoffPolicy(initialDelay: .milliseconds(200), multiplier: 4, maxAttempts: Self.attempts))
        while true {
            do {
                let outcome = try generator.regenerate(id)
                return .finished(outcome.kind == .removed ? .gone : .done, outcome)
            } catch {
                switch error.kind {
                case .badData:
                    return .finished(.failed(error.message), nil)
                case .mysqlUnavailable:
                    let pause = mysqlPause.next()!  // unbounded: never nil
                    core.logger.warning("MySQL unavailable: pausing", metadata: ["thread": "\(index)", "pause_ms": .milliseconds(pause)])
                    if stop.wait(pause) { return .stopped }
                case .shardUnavailable, .failed, .busy:
                    guard let delay = retry.next() else { return .finished(.failed(error.message), nil) }
                    core.logger.warning(
                        "member failed, will retry",
                        metadata: ["member": "\(id)", "attempt": "\(retry.retries)", "reason": "\(error.message)"])
                    if stop.wait(delay) { return .stopped }
                }
            }
        }
    }
}

/// ``RunProgress`` behind a lock, with the session's clock.
final class SharedProgress: Sendable {
    private struct Shared {
        var state: RunProgress
        /// Failures beyond the checkpoint (reported even if the run stops before committing them).
        var uncommitted: [MemberID: String] = [:]
    }
    private let shared: Mutex<Shared>
    private let started = ContinuousClock.now
    private let startFinished: Int
    /// Members in the whole run that need work, earlier sessions included.
    let total: Int

    init(_ progress: RunProgress, total: Int) {
        shared = Mutex(Shared(state: progress))
        self.total = total
        let finished = progress.finished
        startFinished = finished.done + finished.gone + finished.failed
    }

    var progress: RunProgress { shared.withLock { $0.state } }
    var frontier: Int { shared.withLock { $0.state.frontier } }

    func next() -> MemberID? { shared.withLock { $0.state.next() } }

    func finish(_ id: MemberID, _ result: MemberResult) {
        shared.withLock { shared in
            shared.state.finish(id, result)
            if case .failed(let reason) = result { shared.uncommitted[id] = reason }
        }
    }

    func giveBack(_ id: MemberID) { shared.withLock { $0.state.giveBack(id) } }

    func takeCheckpoint() -> (MemberID, RunProgress.Counts, [BackfillFailure]) {
        shared.withLock { shared in
            let failures = shared.state.takeCommittedFailures()
            for failure in failures { shared.uncommitted[failure.member] = nil }
            return (shared.state.checkpoint, shared.state.committed, failures)
        }
    }

    /// Puts back failures whose checkpoint could not be saved (saved with the next one).
    func restoreFailures(_ failures: [BackfillFailure]) {
        shared.withLock { $0.state.restoreCommittedFailures(failures) }
    }

    func uncommittedFailures() -> [BackfillFailure] {
        shared.withLock { shared in
            shared.uncommitted.map { BackfillFailure(member: $0.key, reason: $0.value) }.sorted { $0.member < $1.member }
        }
    }

    func status() -> RunStatus {
        shared.withLock { shared in
            let counts = shared.state.finished
            let finished = counts.done + counts.gone + counts.failed
            let elapsed = ContinuousClock.now - started
            let rate = elapsed > .zero ? Double(finished - startFinished) / elapsed.inSeconds : 0
            return RunStatus(
                finished: finished, total: total, failed: counts.failed, skipped: counts.skipped, rate: rate, elapsed: elapsed)
        }
    }
}

/// Catch-up placements and sets to rebuild, summed across threads.
final class RebuildTotals: Sendable {
    private let totals = Mutex((catchUp: 0, rebuild: Set<MemberID>()))

    func add(_ outcome: GenerationOutcome) {
        totals.withLock { totals in
            totals.catchUp += outcome.publication.catchUp
            totals.rebuild.formUnion(outcome.rebuild)
        }
    }

    var total: (Int, Set<MemberID>) { totals.withLock { ($0.catchUp, $0.rebuild) } }
}

/// Enqueue results summed.
final class QueueTotals: Sendable {
    private let value = Mutex(EnqueueResult())

    func add(_ more: EnqueueResult) {
        value.withLock { value in
            value.enqueued += more.enqueued
            value.promoted += more.promoted
            value.alreadyWaiting += more.alreadyWaiting
            value.alreadyDelayed += more.alreadyDelayed
        }
    }

    var total: EnqueueResult { value.withLock { $0 } }
}
