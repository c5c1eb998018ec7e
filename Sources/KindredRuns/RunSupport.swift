import Foundation
import KindredCore
import KindredLogging
import KindredSupport
import Logging
import MemberStore
import Scoring

/// What a run tells the operator while it works; the program decides how
/// to show it (a progress bar on a terminal, plain lines otherwise).
package enum RunEvent: Sendable {
    /// A line for the log: the plan, a pause, a resume.
    case message(String)
    case progress(RunStatus)
    /// The last progress of the session (show it whatever the throttling).
    case finalProgress(RunStatus)
}

/// A run's progress at one instant.
package struct RunStatus: Sendable, Hashable {
    /// Members finished (rebuilt or evicted, gone, failed), earlier sessions included.
    package var finished: Int
    /// Members to process in the whole run (earlier sessions included).
    package var total: Int
    package var failed: Int
    /// Skipped so far (sets already current, members with nothing to evict).
    package var skipped: Int
    /// Members per second in this session.
    package var rate: Double
    package var elapsed: Duration

    package init(finished: Int, total: Int, failed: Int, skipped: Int, rate: Double, elapsed: Duration) {
        self.finished = finished
        self.total = total
        self.failed = failed
        self.skipped = skipped
        self.rate = rate
        self.elapsed = elapsed
    }

    package var fraction: Double? { total > 0 ? min(1, Double(finished) / Double(total)) : nil }

    /// Seconds left at this session's rate.
    package var remaining: Duration? {
        guard rate > 0, total > finished else { return total > 0 && finished >= total ? .zero : nil }
        return .seconds(Double(total - finished) / rate)
    }
}

/// A run that refused to start, with the reason (nothing was written).
package struct RunRefusal: Error, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Hashable {
        /// The selected sets would not fit a shard's memory budget.
        case memoryBudget
        /// Another process runs the same selection.
        case busy
        /// The selection is not usable.
        case selection
        /// A setting the run needs is missing (`--via-queue` without a queue).
        case configuration
    }

    package let kind: Kind
    package let description: String

    package init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// How a run ended, for its summary and exit status.
package struct RunReport: Sendable {
    package var runID: UInt32?
    package var dryRun: Bool
    /// Stopped (Ctrl-C, SIGTERM) before every member was processed: run the same command to resume.
    package var interrupted: Bool
    /// Counts over the whole run (earlier sessions included).
    package var counts: RunProgress.Counts
    /// Counts of this session alone.
    package var session: RunProgress.Counts
    package var elapsed: Duration
    /// Failures per reason, most frequent first, with a few member ids each.
    package var failureReasons: [(reason: String, count: Int, members: [MemberID])]
    /// Lines describing the plan (selection, counts, shards, memory).
    package var planLines: [String]
    /// Extra summary lines (offers, phases, queue).
    package var notes: [String]

    package init(
        runID: UInt32?, dryRun: Bool, interrupted: Bool, counts: RunProgress.Counts, session: RunProgress.Counts,
        elapsed: Duration, failureReasons: [(reason: String, count: Int, members: [MemberID])], planLines: [String],
        notes: [String]
    ) {
        self.runID = runID
        self.dryRun = dryRun
        self.interrupted = interrupted
        self.counts = counts
        self.session = session
        self.elapsed = elapsed
        self.failureReasons = failureReasons
        self.planLines = planLines
        self.notes = notes
    }
}

/// The run's own member store session (plan, checkpoints), reconnecting
/// with backoff as the worker does when MySQL goes away. One per thread
/// that uses it, made there.
///
/// It also keeps the run's lock. A MySQL user lock belongs to the session
/// that took it, so a reconnect (MySQL restarted, the link broke) silently
/// drops it; every use of the connection therefore first checks that the
/// session still holds the lock and takes it again when it is free. When
/// another process took it meanwhile, the run has lost its claim: that use
/// and every later one throw ``RunRefusal`` (`.busy`) and nothing more is
/// written for this run (the other process continues it).
final class RunSession {
    private enum LockState {
        case none
        case held(command: String, key: String, program: String)
        case lost(RunRefusal)
    }

    private let store: StoreConfiguration
    private let logger: Logger
    private var session: StoreSession?
    private var lock: LockState = .none
    let onEvent: (RunEvent) -> Void

    /// `onEvent` hears of each retry (called on this connection's thread).
    init(store: StoreConfiguration, logger: Logger, onEvent: @escaping (RunEvent) -> Void) {
        self.store = store
        self.logger = logger
        self.onEvent = onEvent
    }

    deinit { session?.close() }

    /// Runs `body`, retrying with backoff for up to `giveUpAfter` while
    /// MySQL is unreachable (each retry reported as an event), on a session
    /// that holds the run's lock when one was taken.
    func run<T>(giveUpAfter: Duration = .seconds(300), _ body: (StoreSession) throws -> T) throws -> T {
        if case .lost(let refusal) = lock { throw refusal }
        let policy = RetryPolicy(giveUpAfter: giveUpAfter)
        let session = try current(policy: policy)
        return try session.withRetry(policy: policy, onRetry: { event in
            onEvent(.message("MySQL unavailable (\(event.reason)): retrying in \(event.delay)"))
        }) { session in
            try keepLock(session)
            return try body(session)
        }
    }

    /// Takes the run's lock for `command` + `key`; false when another session holds it.
    func takeLock(command: String, key: String, program: String) throws -> Bool {
        let taken = try run { try $0.runs.lock(command: command, key: key) }
        if taken { lock = .held(command: command, key: key, program: program) }
        return taken
    }

    /// Releases the run's lock, if this session still holds it.
    func releaseLock() {
        guard case .held(let command, let key, _) = lock else { return }
        lock = .none
        _ = try? run(giveUpAfter: .seconds(5)) { try $0.runs.unlock(command: command, key: key) }
    }

    private func keepLock(_ session: StoreSession) throws {
        guard case .held(let command, let key, let program) = lock else { return }
        let store = session.runs
        if try store.holdsLock(command: command, key: key) { return }
        if try store.lock(command: command, key: key) {
            onEvent(.message("MySQL session renewed: took the run's lock again"))
            return
        }
        let refusal = RunRefusal(
            .busy,
            "lost the run's lock while MySQL was unreachable, and another `kindred \(program)` with this selection "
                + "holds it now: this one stops and writes nothing more (the other continues the run)")
        lock = .lost(refusal)
        throw refusal
    }

    private func current(policy: RetryPolicy) throws -> StoreSession {
        if let session { return session }
        let made = try StoreSession.connect(
            store, waitingUpTo: policy.giveUpAfter, onRetry: Bootstrap.logStartupRetry(logger))
        session = made
        return made
    }

    /// Disconnects (a lock still held goes with the session).
    func close() {
        session?.close()
        session = nil
    }
}

extension RunSession {
    /// Takes the lock of `command` and `selection` (not on a dry run) and
    /// returns its open run to resume, if any; with `restart` an open run is
    /// abandoned (dry: only said) and nil returned.
    /// - Throws: ``RunRefusal`` (`.busy`) when another process holds the lock.
    func claimRun(command: String, key: String, program: String, dryRun: Bool, restart: Bool) throws -> BackfillRunRecord? {
        if !dryRun {
            guard try takeLock(command: command, key: key, program: program) else {
                throw RunRefusal(.busy, "another `kindred \(program)` with this selection is running (it holds the run's lock)")
            }
        }
        let open = try run { try $0.runs.openRun(command: command, key: key) }
        guard let open, restart else { return open }
        if dryRun {
            onEvent(.message("would abandon open run \(open.id) (--restart) and start over"))
        } else {
            try run { try $0.runs.close(open.id, as: .abandoned) }
            onEvent(.message("abandoned run \(open.id) (--restart): starting over"))
        }
        return nil
    }

    /// Resumes `open`, or records a new run, and says which.
    func beginRun(
        resuming open: BackfillRunRecord?, command: String, key: String, selection: String, now: Int64,
        planned: Int
    ) throws -> BackfillRunRecord {
        let begun: BackfillRunRecord
        if let open {
            try run { try $0.runs.resumed(open.id) }
            begun = open
        } else {
            begun = try run {
                try $0.runs.open(
                    command: command, key: key, selection: selection, now: now, planned: planned)
            }
        }
        onEvent(.message("run \(begun.id): \(open == nil ? "started" : "resumed after member \(begun.checkpoint)")"))
        return begun
    }
}

extension RunSession {
    /// Ends this session of `run`: saves the last checkpoint, closes the run
    /// when every member is finished, releases the run's lock.
    /// - Throws: the save's error (``RunRefusal`` when the lock was lost);
    ///   the run then stays open.
    func endSession(of run: BackfillRunRecord, follower: RunFollower, shared: SharedProgress) throws -> RunProgress {
        try follower.save(shared, giveUpAfter: .seconds(600))
        let progress = shared.progress
        if progress.isComplete {
            try self.run { try $0.runs.close(run.id, as: .finished) }
        }
        releaseLock()
        return progress
    }

    /// The run's failures per reason, most frequent first, with up to ten
    /// member ids each: the committed ones from MySQL (earlier sessions
    /// too) plus this session's beyond the checkpoint.
    func failureReasons(of run: BackfillRunRecord, shared: SharedProgress) -> [(reason: String, count: Int, members: [MemberID])] {
        var byReason: [String: (count: Int, members: [MemberID])] = [:]
        let stored = (try? self.run(giveUpAfter: .seconds(5)) { try $0.runs.failures(of: run.id, limit: 100_000) }) ?? []
        for failure in stored + shared.uncommittedFailures() {
            var entry = byReason[failure.reason] ?? (0, [])
            entry.count += 1
            if entry.members.count < 10 { entry.members.append(failure.member) }
            byReason[failure.reason] = entry
        }
        return byReason.map { (reason: $0.key, count: $0.value.count, members: $0.value.members) }
            .sorted { ($0.count, $1.reason) > ($1.count, $0.reason) }
    }
}

/// Follows a run's threads from the calling thread: reports progress
/// every `progressInterval` and saves the checkpoint (when the frontier
/// moved) every `checkpointInterval`, until the work ends.
struct RunFollower {
    let run: BackfillRunRecord
    let database: RunSession
    let checkpointInterval: Duration
    let progressInterval: Duration

    /// `done(timeout)` waits up to `timeout` for the work to end and says
    /// whether it has. A checkpoint refused because the run lost its lock
    /// stops the work (`stop`); the final save then throws that refusal.
    func follow(_ shared: SharedProgress, stop: StopSignal, onEvent: (RunEvent) -> Void, done: (Duration) -> Bool) {
        var lastCheckpoint = ContinuousClock.now
        var savedFrontier = -1
        while !done(progressInterval) {
            onEvent(.progress(shared.status()))
            if ContinuousClock.now - lastCheckpoint >= checkpointInterval {
                lastCheckpoint = ContinuousClock.now
                let frontier = shared.frontier
                if frontier != savedFrontier {
                    do {
                        try save(shared, giveUpAfter: .seconds(2))
                        savedFrontier = frontier
                    } catch let refusal as RunRefusal {
                        onEvent(.message("\(refusal.description): stopping after the members in flight"))
                        stop.stop()
                    } catch {
                        onEvent(.message("could not save the checkpoint (will retry): \(error)"))
                    }
                }
            }
        }
        onEvent(.finalProgress(shared.status()))
    }

    /// Saves the checkpoint, the committed counts and their failures.
    func save(_ shared: SharedProgress, giveUpAfter: Duration) throws {
        let (checkpoint, counts, failures) = shared.takeCheckpoint()
        do {
            try database.run(giveUpAfter: giveUpAfter) {
                try $0.runs.checkpoint(
                    run.id, at: checkpoint, done: counts.done, skipped: counts.skipped, gone: counts.gone,
                    failed: counts.failed, failures: failures)
            }
        } catch {
            shared.restoreFailures(failures)
            throw error
        }
    }
}

/// Runs `body` in a thread's own run session, and while MySQL is
/// unavailable pauses with backoff (doubling to `limit`) and tries again,
/// until it succeeds or `stop` is set (then nil).
func whileMySQLDown<T>(
    _ database: RunSession, stop: StopSignal, limit: Duration, logger: Logger, _ body: (StoreSession) throws -> T
) throws -> T? {
    var backoff = Backoff(BackoffPolicy(initialDelay: .milliseconds(500), maximumDelay: max(.milliseconds(500), limit)))
    while true {
        let pause = backoff.policy.delay(afterFailures: backoff.retries + 1, jitter: 0)
        do {
            return try database.run(giveUpAfter: .seconds(5), body)
        } catch let error as MemberStoreError where error.code == .unavailable {
            logger.warning("MySQL unavailable: pausing", metadata: ["pause_ms": .milliseconds(pause), "error": "\(error)"])
        } catch where StoreSession.isConnectionLost(error) {
            logger.warning("MySQL unavailable: pausing", metadata: ["pause_ms": .milliseconds(pause), "error": "\(error)"])
        }
        database.close()
        if stop.wait(backoff.next()!) { return nil }  // unbounded: never nil
    }
}

/// The current Unix time in seconds.
func unixNow() -> Int64 { Int64(Date().timeIntervalSince1970) }
