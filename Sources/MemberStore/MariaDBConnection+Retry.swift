import KindredSupport
import MariaDBClient


/// One retry the helper is about to make, for logs and progress lines.
package struct RetryEvent: Sendable {
    /// 1 for the first retry.
    package let attempt: Int
    /// How long it waits before trying again.
    package let delay: Duration
    /// What failed (redacted: no member data).
    package let error: MariaDBError

    /// What failed, in words (the client's message: no SQL, no member data),
    /// for callers that do not speak the client's error type.
    package var reason: String { error.message }
}

extension MariaDBConnection {
    /// Runs `body`, and when it fails because the connection was lost (MySQL
    /// restarted, killed, failed over) or because of a deadlock or lock wait
    /// timeout, waits, reconnects if needed, and runs it again, with
    /// ``Backoff`` under `policy`. Any other error is thrown at once.
    ///
    /// `body` must be safe to run more than once: one transaction, or
    /// statements that are idempotent (upserts, `INSERT IGNORE`, deletes).
    /// A commit whose connection broke has an unknown outcome, and running
    /// the same transaction again settles it.
    ///
    /// - Throws: the first error that is not retryable, or
    ///   ``MemberStoreError/Code/unavailable`` (wrapping the last database
    ///   error) when the policy's time budget runs out.
    @discardableResult
    package func withRetry<Result>(
        policy: RetryPolicy = .default,
        onRetry: (RetryEvent) -> Void = { _ in },
        sleep: (Duration) -> Void = sleepThread,
        _ body: (MariaDBConnection) throws -> Result
    ) throws -> Result {
        let clock = ContinuousClock()
        var firstFailure: ContinuousClock.Instant?
        var backoff = Backoff(policy.backoff)
        var needsReconnect = false
        while true {
            do {
                if needsReconnect {
                    try reconnect()
                    needsReconnect = false
                }
                return try body(self)
            } catch let error as MariaDBError where error.isConnectionLost || error.isRetryableTransactionFailure {
                let started = firstFailure ?? clock.now
                firstFailure = started
                needsReconnect = needsReconnect || error.isConnectionLost
                guard let delay = backoff.next(elapsed: clock.now - started) else {
                    throw MemberStoreError(
                        .unavailable,
                        "MySQL still failing after \(backoff.retries) retries over \(policy.giveUpAfter): giving up",
                        underlying: error)
                }
                onRetry(RetryEvent(attempt: backoff.retries, delay: delay, error: error))
                sleep(delay)
            }
        }
    }
}
