import CoreMetrics
import Foundation
import Synchronization

/// A `MetricsFactory` that keeps only what a run's summary needs: the total
/// time and count of each phase of ``Generator``'s jobs
/// (`kindred_job_phase_seconds`, by `phase`), so `kindred backfill` can say
/// where its time went. Every other metric is dropped.
public final class PhaseTotals: MetricsFactory, Sendable {
    private let totals = Mutex<[String: (nanoseconds: Int64, count: Int)]>([:])
    /// Phases in the order a job runs them.
    public static let order = ["read", "scan", "assign", "write", "offers", "record", "remove"]

    public init() {}

    /// Total time and count per phase.
    public var snapshot: [(phase: String, total: Duration, count: Int)] {
        let copy = totals.withLock { $0 }
        return copy.keys.sorted { (Self.order.firstIndex(of: $0) ?? 99, $0) < (Self.order.firstIndex(of: $1) ?? 99, $1) }
            .map { (phase: $0, total: .nanoseconds(copy[$0]!.nanoseconds), count: copy[$0]!.count) }
    }

    fileprivate func record(_ phase: String, nanoseconds: Int64) {
        totals.withLock { totals in
            let old = totals[phase] ?? (0, 0)
            totals[phase] = (old.nanoseconds + nanoseconds, old.count + 1)
        }
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard label == "kindred_job_phase_seconds", let phase = dimensions.first(where: { $0.0 == "phase" })?.1 else {
            return NOOPMetricsHandler.instance
        }
        return PhaseTimer(phase: phase, totals: self)
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        NOOPMetricsHandler.instance
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        NOOPMetricsHandler.instance
    }

    public func destroyCounter(_ handler: any CounterHandler) {}
    public func destroyRecorder(_ handler: any RecorderHandler) {}
    public func destroyTimer(_ handler: any TimerHandler) {}
}

private final class PhaseTimer: TimerHandler, Sendable {
    let phase: String
    let totals: PhaseTotals

    init(phase: String, totals: PhaseTotals) {
        self.phase = phase
        self.totals = totals
    }

    func recordNanoseconds(_ duration: Int64) {
        totals.record(phase, nanoseconds: duration)
    }
}
