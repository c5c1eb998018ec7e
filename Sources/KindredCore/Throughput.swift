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
/// Publication is exactly once: what is taken to publish becomes a numbered
/// batch, published again under the same number until it is confirmed
/// (``WorkQueue/addThroughput(_:publisher:sequence:on:)`` adds a number
/// once), so a publication whose reply was lost is not counted twice.
///
/// Thread-safe; recording is a dictionary update under a lock, once per
/// job (never per candidate).
package final class ThroughputRecorder: Sendable {
    /// Counts taken for publication, under the number they are published with.
    package struct Batch: Sendable, Equatable {
        package let sequence: UInt64
        package let counts: [Int64: [String: Int]]
    }

    private struct State {
        var pending: [Int64: [String: Int]] = [:]
        /// Taken and not confirmed: sent again, unchanged, before anything newer.
        var unconfirmed: Batch?
        var lastSequence: UInt64 = 0
    }
    private let state = Mutex(State())

    /// Upper bounds of the latency buckets, milliseconds (the field
    /// `latency_le_B` counts jobs that took at most B ms and more than the
    /// bucket below; `latency_le_inf` the rest).
    package static let latencyBounds: [Int] = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000]

    package init() {}

    /// Adds `count` to `field` in the minute of `now`.
    package func add(_ field: String, _ count: Int = 1, now: Date = Date()) {
        guard count != 0 else { return }
        let minute = Self.minute(of: now)
        state.withLock { state in state.pending[minute, default: [:]][field, default: 0] += count }
    }

    /// Records one job's enqueue-to-stored time.
    package func latency(milliseconds: Int64, now: Date = Date()) {
        add(Self.latencyField(milliseconds), now: now)
    }

    /// What to publish next: the batch taken before and not confirmed (its
    /// publication failed, or its reply was lost), unchanged; else
    /// everything recorded since, under the next number; nil when nothing
    /// was recorded.
    package func nextBatch() -> Batch? {
        state.withLock { state in
            if let unconfirmed = state.unconfirmed { return unconfirmed }
            guard !state.pending.isEmpty else { return nil }
            state.lastSequence += 1
            let batch = Batch(sequence: state.lastSequence, counts: state.pending)
            state.pending = [:]
            state.unconfirmed = batch
            return batch
        }
    }

    /// `batch` is stored: the next one takes what was recorded since.
    package func confirm(_ batch: Batch) {
        state.withLock { state in
            if state.unconfirmed?.sequence == batch.sequence { state.unconfirmed = nil }
        }
    }

    /// One round of publication through `send`: the unconfirmed batch, if
    /// any, then what was recorded since; each confirmed once `send`
    /// returns. Two batches at most, so a busy process cannot keep the
    /// publisher here. A throwing `send` leaves its batch unconfirmed.
    package func publish(_ send: (Batch) throws -> Void) rethrows {
        for _ in 0..<2 {
            guard let batch = nextBatch() else { return }
            try send(batch)
            confirm(batch)
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
