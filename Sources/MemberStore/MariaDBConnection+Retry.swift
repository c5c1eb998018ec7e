import KindredSupport
import MariaDBClient

#if canImport(Glibc)
import Glibc
import Synchronization
#endif

/// One retry the helper is about to make, for logs and progress lines.
public struct RetryEvent: Sendable {
    /// 1 for the first retry.
    public let attempt: Int
    /// How long it waits before trying again.
    public let delay: Duration
    /// What failed (redacted: no member data).
    public let error: MariaDBError
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
    public func withRetry<Result>(
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

/// A connection shared by several threads, one at a time: every use goes
/// through ``withConnection(_:)`` (or ``withRetry(policy:onRetry:_:)``),
/// which holds a lock for the duration of the closure.
///
/// A ``MariaDBClient/MariaDBConnection`` is not thread-safe and blocks its
/// thread for every round trip; this box is for state that must be shared
/// (a ``ShardDirectory`` used by request handlers), not for throughput: each
/// thread that does heavy work (an import, a snapshot load) should own a
/// connection of its own. The closure must not let the connection escape.
public final class SerializedConnection: @unchecked Sendable {
    // Why this is safe: `connection` (a C handle) arrives `sending`, is only
    // used inside `lock.withLock`, so no two threads use it at once, and is
    // never handed out otherwise (the closures must not let it escape).
    private let lock = Mutex(())
    private let connection: MariaDBConnection

    public init(_ connection: sending MariaDBConnection) {
        self.connection = connection
    }

    /// Connects with `configuration`.
    public convenience init(configuration: MariaDBConnection.Configuration) throws {
        self.init(try MariaDBConnection(configuration: configuration))
    }

    /// Runs `body` with exclusive use of the connection.
    @discardableResult
    public func withConnection<Result>(_ body: (MariaDBConnection) throws -> Result) throws -> Result {
        var result: Result?
        try lock.withLock { _ in result = try body(connection) }
        return result!
    }

    /// ``withConnection(_:)`` with the reconnect-and-retry helper around `body`.
    @discardableResult
    public func withRetry<Result>(
        policy: RetryPolicy = .default, onRetry: (RetryEvent) -> Void = { _ in },
        _ body: (MariaDBConnection) throws -> Result
    ) throws -> Result {
        var result: Result?
        try lock.withLock { _ in result = try connection.withRetry(policy: policy, onRetry: onRetry, body) }
        return result!
    }

    /// Disconnects for good.
    public func close() {
        lock.withLock { _ in connection.close() }
    }
}
