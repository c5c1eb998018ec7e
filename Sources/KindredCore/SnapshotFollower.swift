import KindredSupport
import Logging
import MemberStore
import Scoring

/// Keeps a process's snapshot (``SharedPopulation``) and set index
/// (``SetIndex``) following MySQL, for the periodic refresher and for jobs
/// that must see everything committed before they began.
///
/// A job calls ``refresh(startedAfter:in:)`` with the instant it began: it
/// returns once a refresh whose reads started after that instant has been
/// applied, running one on the caller's connection unless another thread's
/// (started late enough) already did or is doing it: one refresh serves
/// every job waiting for it.
///
/// What a refresh guarantees: every member change whose `changed_at` is
/// more than ``overlap`` older than the refresh's ``watermark`` is in the
/// snapshot (a write transaction is assumed to commit within the overlap of
/// stamping `changed_at`), and so is every generation record committed
/// before its reads began.
package final class SnapshotFollower: Sendable {
    package let population: SharedPopulation
    /// nil: this process does not follow the set index (it publishes nothing).
    package let sets: SetIndex?
    package let survey: Survey
    /// How far behind the watermark a refresh looks again (late commits).
    package let overlap: Duration
    /// How often the set index is reloaded whole (sets removed since drop out).
    package let fullReloadInterval: Duration
    let logger: Logger

    private struct State {
        var running = false
        var runningStart: ContinuousClock.Instant?
        var completedStart: ContinuousClock.Instant?
        var snapshotWatermark: SnapshotWatermark
        var setsWatermark: ServerTime?
        var lastFullReload: ContinuousClock.Instant?
    }
    private let state: Monitor<State>

    /// - Parameters:
    ///   - watermark: the snapshot's, from its load.
    ///   - setsWatermark: the set index's, from its load (nil: load it whole first).
    package init(
        population: SharedPopulation, sets: SetIndex?, watermark: SnapshotWatermark,
        setsWatermark: ServerTime?, overlap: Duration = .seconds(10), fullReloadInterval: Duration = .seconds(600),
        logger: Logger
    ) {
        self.population = population
        self.sets = sets
        survey = population.survey
        self.overlap = overlap
        self.fullReloadInterval = fullReloadInterval
        self.logger = logger
        state = Monitor(State(
            snapshotWatermark: watermark, setsWatermark: setsWatermark, lastFullReload: setsWatermark == nil ? nil : .now))
    }

    /// The watermark of the last refresh applied: every change with
    /// `changed_at` before `watermark - overlap` is in the snapshot.
    package var watermark: SnapshotWatermark { state.withLock { state, _ in state.snapshotWatermark } }

    /// The time up to which the snapshot holds every change
    /// (``watermark`` minus ``overlap``): what a set scanned now covers.
    package var coveredUntil: ServerTime {
        (ServerTime(watermark.serverTime) ?? .distantPast) - overlap
    }

    private enum Step {
        case done
        case wait
        case run(SnapshotWatermark, ServerTime?, fullReload: Bool)
    }

    /// Applies a refresh whose reads started after `instant` (now, when nil):
    /// see the type's documentation.
    package func refresh(startedAfter instant: ContinuousClock.Instant? = nil, in session: StoreSession) throws {
        let instant = instant ?? .now
        while true {
            let step = state.withLock { state, condition -> Step in
                if let done = state.completedStart, done >= instant { return .done }
                if state.running {
                    _ = condition.wait(&state, timeout: .seconds(1))
                    return .wait
                }
                state.running = true
                let start = ContinuousClock.now
                state.runningStart = start
                let full = state.lastFullReload.map { start - $0 >= fullReloadInterval } ?? true
                return .run(state.snapshotWatermark, full ? nil : state.setsWatermark, fullReload: full)
            }
            switch step {
            case .done: return
            case .wait: continue
            case .run(let since, let setsSince, let fullReload):
                do {
                    try run(since: since, setsSince: setsSince, fullReload: fullReload, in: session)
                } catch {
                    state.withLock { state, condition in
                        state.running = false
                        condition.broadcast()
                    }
                    throw error
                }
            }
        }
    }

    private func run(since: SnapshotWatermark, setsSince: ServerTime?, fullReload: Bool, in session: StoreSession) throws {
        let population = self.population
        let changes = try session.snapshot(overlap: overlap).changes(since: since, survey: survey) { id, version in
            population.read { $0.tag(of: id) == version }
        }
        // The snapshot's clock reading (taken before both reads) is the sets' watermark too: one clock read per refresh.
        let records = try sets.map { _ in
            try session.generations.setRecords(
                recordedAfter: setsSince, overlap: overlap, asOf: ServerTime(changes.watermark.serverTime))
        }
        for invalid in changes.invalid {
            logger.error(
                "stored member breaks the rules: left out of the snapshot",
                metadata: ["member": "\(invalid.id)", "reason": "\(invalid.reason)"])
        }
        if population.apply(changes) == 0 { population.markRefreshed() }
        if let records { sets?.apply(records.records, replacingAll: fullReload) }
        let setsWatermark = records?.watermark
        state.withLock { state, condition in
            state.snapshotWatermark = max(state.snapshotWatermark, changes.watermark)
            if let setsWatermark { state.setsWatermark = max(state.setsWatermark ?? setsWatermark, setsWatermark) }
            if fullReload { state.lastFullReload = state.runningStart }
            state.completedStart = state.runningStart
            state.running = false
            condition.broadcast()
        }
    }
}
