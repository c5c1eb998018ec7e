/// How failed jobs are retried: exponential backoff with jitter, and a limit
/// after which the job goes to the dead-letter list. Pure: the delay is a
/// function of the attempt and a jitter fraction the caller draws.
public struct JobRetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included; reaching it sends the job to the dead letters.
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// The largest random fraction added to a delay (0.25: up to +25%), so
    /// that jobs failing together do not come back together.
    public var jitter: Double

    public init(maxAttempts: Int = 5, baseDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(60), jitter: Double = 0.25) {
        precondition(maxAttempts >= 1)
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    public static let `default` = JobRetryPolicy()

    /// The wait before attempt `attempt + 1` after `attempt` failures
    /// (attempt >= 1): `base * 2^(attempt-1)`, capped, times `1 + jitter * u`
    /// for `u` in [0, 1).
    public func delay(afterFailures attempt: Int, random u: Double) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let base = Double(baseDelay.components.seconds) + Double(baseDelay.components.attoseconds) / 1e18
        let cap = Double(maxDelay.components.seconds) + Double(maxDelay.components.attoseconds) / 1e18
        let seconds = min(base * Double(1 << exponent), cap) * (1 + jitter * min(max(u, 0), 1))
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }
}
