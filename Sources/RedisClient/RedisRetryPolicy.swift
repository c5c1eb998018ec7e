import KindredSupport

/// How ``RedisConnection/send(_:)`` retries the error replies that mean "not
/// now" rather than "no": `LOADING` (the server is loading its dataset after a
/// restart) and `BUSY` (a script or function is running past
/// `busy-reply-threshold`).
///
/// Both replies mean the server did not run the command, so retrying is safe
/// even for commands that are not idempotent.
///
/// The delay before attempt `n` (`n >= 2`) is `baseDelay * 2^(n-2)`, capped at
/// ``maxDelay``: with the defaults, 50, 100, 200, 400, 800 ms, about 1.55 s of
/// waiting in all before the error reply is returned as it is. No jitter: a
/// connection is one caller's, and many clients waking together on a server
/// that has just finished loading is harmless.
///
/// This is a pure value: ``delay(beforeAttempt:)`` and
/// ``isRetryable(errorMessage:)`` do no I/O and are tested on their own.
package struct RedisRetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included. 1 means no retry.
    package var maxAttempts: Int
    /// The delay before the second attempt.
    package var baseDelay: Duration
    /// The longest single delay.
    package var maxDelay: Duration

    package init(maxAttempts: Int, baseDelay: Duration, maxDelay: Duration) {
        precondition(maxAttempts >= 1, "maxAttempts counts the first attempt: at least 1")
        precondition(baseDelay >= .zero && maxDelay >= baseDelay, "need 0 <= baseDelay <= maxDelay")
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Six attempts, 50 ms doubling up to 2 s: ~1.55 s of waiting at most.
    package static var `default`: RedisRetryPolicy {
        RedisRetryPolicy(maxAttempts: 6, baseDelay: .milliseconds(50), maxDelay: .seconds(2))
    }

    /// One attempt: error replies come back at once.
    package static var none: RedisRetryPolicy {
        RedisRetryPolicy(maxAttempts: 1, baseDelay: .zero, maxDelay: .zero)
    }

    /// The backoff these settings describe.
    package var backoff: BackoffPolicy {
        BackoffPolicy(initialDelay: baseDelay, maximumDelay: maxDelay, maxAttempts: maxAttempts)
    }

    /// The delay to wait before attempt `attempt` (2 for the first retry).
    package func delay(beforeAttempt attempt: Int) -> Duration {
        precondition(attempt >= 2, "there is no delay before the first attempt")
        return backoff.delay(afterFailures: attempt - 1, jitter: 0)
    }

    /// True for error replies that mean the server did not run the command and
    /// will later: `LOADING ...` and `BUSY ...`. Other kinds that merely start
    /// with those letters (`BUSYKEY`, `BUSYGROUP`) are real errors.
    package static func isRetryable(errorMessage: String) -> Bool {
        let kind = RedisError.kind(ofServerMessage: errorMessage)
        return kind == "LOADING" || kind == "BUSY"
    }
}

/// What a connection tells its ``RedisConnection/retryObserver`` before it
/// waits and sends a command again: for logs and metrics, and for tests that
/// must act while a retry is pending.
package struct RedisRetryEvent: Sendable, Hashable {
    /// The command's name (`HSET`).
    package var command: String
    /// The attempt that got the retryable reply (1 for the first).
    package var failedAttempt: Int
    /// The reply's kind: `BUSY` or `LOADING`.
    package var errorKind: String
    /// How long the connection now sleeps before the next attempt.
    package var delay: Duration
}
