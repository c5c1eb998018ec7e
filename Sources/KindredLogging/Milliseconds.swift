import Logging

/// A duration as log metadata: milliseconds with one decimal (`6301.7`),
/// under a key ending in `_ms` (`took_ms`, `pause_ms`), instead of Swift's
/// `6.301662511000001 seconds`. The JSON format writes it as a number.
package struct Milliseconds: Sendable, Hashable, CustomStringConvertible {
    /// Tenths of a millisecond, rounded half away from zero.
    package let tenths: Int64

    package init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        // 1 tenth of a ms = 1e14 attoseconds.
        let fraction = Double(attoseconds) / 1e14
        tenths = seconds * 10_000 + Int64(fraction.rounded(.toNearestOrAwayFromZero))
    }

    /// `6301.7`, `0.0`, `-12.5`.
    package var description: String {
        let sign = tenths < 0 ? "-" : ""
        let magnitude = tenths.magnitude
        return "\(sign)\(magnitude / 10).\(magnitude % 10)"
    }
}

extension Duration {
    /// This duration in milliseconds with one decimal (`"6301.7"`), for logs and reports.
    package var millisecondsText: String { Milliseconds(self).description }
}

extension Logger.MetadataValue {
    /// A duration as metadata in milliseconds: `["took_ms": .milliseconds(elapsed)]`.
    package static func milliseconds(_ duration: Duration) -> Logger.MetadataValue {
        .stringConvertible(Milliseconds(duration))
    }
}
