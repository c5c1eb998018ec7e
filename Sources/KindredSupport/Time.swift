#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Blocks the calling thread for `duration` (not interruptible: a thread
/// that must stop early waits on a ``StopSignal`` instead), resuming after
/// signals. Never call it on Swift's cooperative pool.
package func sleepThread(_ duration: Duration) {
    guard duration > .zero else { return }
    var request = duration.timespec
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR {
        request = remaining
    }
}

/// The one set of `Duration` conversions for C calls, log lines and
/// arithmetic in another unit (two formatters keep their own rounding:
/// the MySQL client's whole-second timeouts and the log's milliseconds).
extension Duration {
    /// Seconds as a `Double` (for display, rates and Foundation).
    package var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// Whole nanoseconds, truncated.
    package var inNanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    /// Whole microseconds, truncated.
    package var inMicroseconds: Int64 {
        components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
    }

    /// Whole milliseconds, truncated (as the queue's scripts take them).
    package var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// A `timeval` of this length, truncated to microseconds (negative
    /// durations are zero).
    package var timeval: timeval {
        let (seconds, attoseconds) = max(self, .zero).components
        return .init(tv_sec: time_t(seconds), tv_usec: suseconds_t(attoseconds / 1_000_000_000_000))
    }

    /// A `timespec` of this length (negative durations are zero).
    package var timespec: timespec {
        let (seconds, attoseconds) = max(self, .zero).components
        return .init(tv_sec: time_t(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    }
}
