import CoreMetrics
import Foundation
import Synchronization

/// A `MetricsFactory` that keeps only what a run's summary needs: the total
/// time and count of each phase of ``Generator``'s jobs
/// (`kindred_job_phase_seconds`, by `phase`), so `kindred backfill` can say
/// where its time went. Every other metric is dropped.
package final class PhaseTotals: MetricsFactory, Sendable {
    private let totals = Mutex<[String: (nanoseconds: Int64, count: Int)]>([:])
    /// Phases in the order a job runs them.
    package static let order = ["read", "refresh", "scan", "assign", "write", "record", "catch-up", "publish-scan", "publish", "remove"]

    package init() {}

    /// Total time and count per phase.
    package var snapshot: [(phase: String, total: Duration, count: Int)] {
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

    package func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard label == "kindred_job_phase_seconds", let phase = dimensions.first(where: { $0.0 == "phase" })?.1 else {
            return NOOPMetricsHandler.instance
        }
        return PhaseTimer(phase: phase, totals: self)
    }

    package func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        NOOPMetricsHandler.instance
    }

    package func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        NOOPMetricsHandler.instance
    }

    package func destroyCounter(_ handler: any CounterHandler) {}
    package func destroyRecorder(_ handler: any RecorderHandler) {}
    package func destroyTimer(_ handler: any TimerHandler) {}
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
