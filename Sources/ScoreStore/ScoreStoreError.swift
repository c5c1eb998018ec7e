import RedisClient

/// A failure of the score store.
///
/// Callers branch on ``code`` (compared with `==`: the code wraps a private
/// enum, so new codes are not breaking); ``message`` and ``shard`` are for
/// logs. Privacy invariant: no description ever holds member ids, scores or
/// keys (a key names a member): messages come from ``RedisError`` (already
/// free of arguments) or from this module's fixed texts.
package struct ScoreStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    package struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case shardUnavailable, unknownShard, connectionFailed, connectionBroken, timedOut
            case serverError, corruptData, invalidArgument
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The shard's circuit breaker is open (it failed repeatedly and is
        /// cooling off), or another caller's trial connection is in flight:
        /// nothing was attempted. Retry after ``ScoreStoreError/retryAfter``.
        package static var shardUnavailable: Code { Code(.shardUnavailable) }
        /// The shard id is not in the manager's list.
        package static var unknownShard: Code { Code(.unknownShard) }
        /// No connection could be opened to the shard (refused, timed out).
        package static var connectionFailed: Code { Code(.connectionFailed) }
        /// The connection died during the operation: it may or may not have
        /// taken effect. Every operation of this store is safe to repeat.
        package static var connectionBroken: Code { Code(.connectionBroken) }
        /// No reply within the read timeout, or no pooled connection became
        /// free within the checkout timeout.
        package static var timedOut: Code { Code(.timedOut) }
        /// The server answered with an error reply (the connection is fine).
        package static var serverError: Code { Code(.serverError) }
        /// Stored data that is not what this store writes (a key of the wrong
        /// type, a field that is not an id, a value that is not a score).
        package static var corruptData: Code { Code(.corruptData) }
        /// A caller's argument is out of range (a bad URL, N < 1, ...).
        package static var invalidArgument: Code { Code(.invalidArgument) }

        package var description: String {
            switch base {
            case .shardUnavailable: "shardUnavailable"
            case .unknownShard: "unknownShard"
            case .connectionFailed: "connectionFailed"
            case .connectionBroken: "connectionBroken"
            case .timedOut: "timedOut"
            case .serverError: "serverError"
            case .corruptData: "corruptData"
            case .invalidArgument: "invalidArgument"
            }
        }
    }

    package let code: Code
    /// What happened, free of member data.
    package let message: String
    /// The shard concerned, when there is one.
    package let shard: ShardID?
    /// For ``Code/shardUnavailable``: how long until the breaker lets a trial through.
    package let retryAfter: Duration?
    /// The Redis error underneath, when there is one.
    package let underlying: RedisError?

    package init(code: Code, message: String, shard: ShardID? = nil, retryAfter: Duration? = nil, underlying: RedisError? = nil) {
        self.code = code
        self.message = message
        self.shard = shard
        self.retryAfter = retryAfter
        self.underlying = underlying
    }

    /// Wraps a Redis error met on `shard`, keeping its code's meaning.
    init(_ error: RedisError, shard: ShardID) {
        let code: Code
        switch error.code {
        case .connectionFailed, .authenticationFailed: code = .connectionFailed
        case .timedOut: code = .timedOut
        case .serverError: code = .serverError
        default: code = .connectionBroken
        }
        self.init(code: code, message: error.description, shard: shard, underlying: error)
    }

    /// True for failures of the transport (the shard, not the request):
    /// what the circuit breaker counts.
    package var isTransportFailure: Bool {
        code == .connectionFailed || code == .connectionBroken || code == .timedOut
    }

    package var description: String {
        var text = "ScoreStoreError.\(code)"
        if let shard { text += " on shard \(shard)" }
        text += ": " + message
        if let retryAfter { text += " (retry after \(retryAfter))" }
        return text
    }
}
