import KindredSupport

/// How failed jobs are retried: exponential backoff with jitter, and a limit
/// after which the job goes to the dead-letter list. Pure: the delay is a
/// function of the attempt and a jitter fraction the caller draws.
package struct JobRetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included; reaching it sends the job to the dead letters.
    package var maxAttempts: Int
    package var baseDelay: Duration
    package var maxDelay: Duration
    /// The largest random fraction added to a delay (0.25: up to +25%), so
    /// that jobs failing together do not come back together.
    package var jitter: Double

    package init(maxAttempts: Int = 5, baseDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(60), jitter: Double = 0.25) {
        precondition(maxAttempts >= 1)
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    package static let `default` = JobRetryPolicy()

    /// The backoff these settings describe (the queue's Lua script computes
    /// the same for postponed jobs).
    package var backoff: BackoffPolicy {
        BackoffPolicy(initialDelay: baseDelay, maximumDelay: maxDelay, jitter: .additive(jitter), maxAttempts: maxAttempts)
    }

    /// The wait before attempt `attempt + 1` after `attempt` failures
    /// (attempt >= 1): `base * 2^(attempt-1)`, capped, times `1 + jitter * u`
    /// for `u` in [0, 1).
    package func delay(afterFailures attempt: Int, random u: Double) -> Duration {
        backoff.delay(afterFailures: max(attempt, 1), jitter: u)
    }
}
