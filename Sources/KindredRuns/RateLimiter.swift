import Foundation
import KindredSupport
import Synchronization

/// Caps a rate of starts (members per second) so that a backfill on a live
/// site leaves it room: the generic cell rate algorithm, a pure state
/// machine over instants given by the caller (tested without clocks).
///
/// Each ``reserve(_:at:)`` books `count` starts and returns when the first
/// may happen: at once while the run is behind its schedule, otherwise at
/// the next free slot. At most `burst` starts happen back to back after an
/// idle spell, so over any interval T the starts number at most
/// `rate * T + burst`.
package struct RateSchedule: Sendable, Hashable {
    /// Starts per second.
    package let rate: Double
    package let burst: Int
    /// The time one start books.
    package let interval: Duration
    /// The theoretical arrival time: when the next start is due.
    private var due: ContinuousClock.Instant?

    package init(rate: Double, burst: Int = 1) {
        precondition(rate > 0, "a rate must be positive")
        precondition(burst >= 1, "the burst is at least one start")
        self.rate = rate
        self.burst = burst
        let nanoseconds = max(1, Int64((1e9 / rate).rounded()))
        interval = .nanoseconds(nanoseconds)
    }

    /// Books `count` starts at `now`; returns the instant the first may
    /// begin (now, or later when ahead of schedule). The caller waits until
    /// then and starts them.
    package mutating func reserve(_ count: Int = 1, at now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        precondition(count >= 1)
        // Idle time earns at most `burst - 1` early starts.
        let earliest = now - interval * (burst - 1)
        let start = max(due ?? earliest, earliest)
        due = start + interval * count
        return max(start, now)
    }
}

/// A ``RateSchedule`` shared by threads: each asks for its next start and
/// blocks until then, waking early when the run is told to stop.
package final class RateLimiter: Sendable {
    private let schedule: Mutex<RateSchedule?>

    /// `rate` nil: no cap.
    package init(rate: Double?) {
        schedule = Mutex(rate.map { RateSchedule(rate: $0, burst: max(1, min(10, Int($0 / 10)))) })
    }

    /// Waits for the next `count` starts; false when `stop` was set first.
    package func wait(_ count: Int = 1, stop: StopSignal) -> Bool {
        guard let start = schedule.withLock({ schedule -> ContinuousClock.Instant? in
            guard schedule != nil else { return nil }
            return schedule!.reserve(count, at: ContinuousClock.now)
        }) else { return !stop.isStopped }
        let delay = start - ContinuousClock.now
        if delay > .zero { return !stop.wait(delay) }
        return !stop.isStopped
    }
}
