import Foundation
import KindredSupport
import Synchronization
import WorkQueue

/// What a process did, per Unix minute, until it is published: jobs by
/// outcome, enqueue-to-stored latency in buckets, placements by outcome.
/// The worker publishes it to the queue's Redis every few seconds
/// (``Maintenance/throughputPublisher(_:)``), where every process adds to
/// the same minutes and the dashboard reads the last hour.
///
/// Thread-safe; recording is a dictionary update under a lock, once per
/// job (never per candidate).
package final class ThroughputRecorder: Sendable {
    private let pending = Mutex<[Int64: [String: Int]]>([:])

    /// Upper bounds of the latency buckets, milliseconds (the field
    /// `latency_le_B` counts jobs that took at most B ms and more than the
    /// bucket below; `latency_le_inf` the rest).
    package static let latencyBounds: [Int] = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000]

    package init() {}

    /// Adds `count` to `field` in the minute of `now`.
    package func add(_ field: String, _ count: Int = 1, now: Date = Date()) {
        guard count != 0 else { return }
        let minute = Self.minute(of: now)
        pending.withLock { pending in pending[minute, default: [:]][field, default: 0] += count }
    }

    /// Records one job's enqueue-to-stored time.
    package func latency(milliseconds: Int64, now: Date = Date()) {
        add(Self.latencyField(milliseconds), now: now)
    }

    /// Takes everything recorded so far (to publish it).
    package func drain() -> [Int64: [String: Int]] {
        pending.withLock { pending in
            defer { pending = [:] }
            return pending
        }
    }

    /// Puts back counts that could not be published (the queue was down).
    package func restore(_ counts: [Int64: [String: Int]]) {
        pending.withLock { pending in
            for (minute, fields) in counts {
                for (field, count) in fields { pending[minute, default: [:]][field, default: 0] += count }
            }
        }
    }

    package static func minute(of date: Date) -> Int64 { Int64(date.timeIntervalSince1970) / 60 }

    static func latencyField(_ milliseconds: Int64) -> String {
        for bound in latencyBounds where milliseconds <= Int64(bound) { return "latency_le_\(bound)" }
        return "latency_le_inf"
    }

    /// The `quantile` (0...1) of a minute's latency buckets: the upper
    /// bound of the bucket it falls in (nil with no job; `.infinity` past
    /// the last bound).
    package static func latencyQuantile(_ quantile: Double, of fields: [String: Int]) -> Double? {
        let counts = latencyBounds.map { fields["latency_le_\($0)"] ?? 0 } + [fields["latency_le_inf"] ?? 0]
        let total = counts.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = max(1, Int((quantile * Double(total)).rounded(.up)))
        var seen = 0
        for (index, count) in counts.enumerated() {
            seen += count
            if seen >= rank { return index < latencyBounds.count ? Double(latencyBounds[index]) : .infinity }
        }
        return .infinity
    }
}
