/// How long and how often to retry when MySQL goes away: exponential
/// backoff from ``initialDelay`` up to ``maximumDelay``, for at most
/// ``giveUpAfter`` since the first failure of one operation.
public struct RetryPolicy: Sendable, Hashable {
    public var initialDelay: Duration
    public var maximumDelay: Duration
    public var multiplier: Double
    /// The time budget from the first failure; when it runs out the
    /// operation fails with ``MemberStoreError/Code/unavailable``.
    public var giveUpAfter: Duration

    public init(
        initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(5), multiplier: Double = 2,
        giveUpAfter: Duration = .seconds(60)
    ) {
        precondition(initialDelay > .zero && maximumDelay >= initialDelay && multiplier >= 1)
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.multiplier = multiplier
        self.giveUpAfter = giveUpAfter
    }

    /// 0.1 s doubling to 5 s, for a minute: rides out a MySQL restart or a
    /// failover without hiding an outage.
    public static let `default` = RetryPolicy()

    /// No retry at all: the first failure is the answer.
    public static let never = RetryPolicy(giveUpAfter: .zero)
}

/// The backoff state of one retried operation: a pure state machine over
/// elapsed time, so it is tested without clocks or servers.
public struct Backoff: Sendable, Hashable {
    public let policy: RetryPolicy
    /// Retries granted so far.
    public private(set) var attempts = 0
    private var nextDelay: Duration

    public init(policy: RetryPolicy) {
        self.policy = policy
        self.nextDelay = policy.initialDelay
    }

    /// The delay before the next attempt, given the time elapsed since the
    /// first failure; `nil` when the budget is spent. A delay never runs
    /// past the budget: the last attempt comes at the deadline.
    public mutating func delay(elapsed: Duration) -> Duration? {
        guard elapsed < policy.giveUpAfter else { return nil }
        let delay = min(nextDelay, policy.giveUpAfter - elapsed)
        attempts += 1
        nextDelay = min(policy.maximumDelay, nextDelay * policy.multiplier)
        return delay
    }
}
