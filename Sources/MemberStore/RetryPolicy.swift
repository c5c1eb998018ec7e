import KindredSupport

/// How long and how often to retry when MySQL goes away: exponential
/// backoff from ``initialDelay`` up to ``maximumDelay``, for at most
/// ``giveUpAfter`` since the first failure of one operation (the last delay
/// clipped to that deadline). The settings of a ``backoff``, which does
/// the arithmetic.
package struct RetryPolicy: Sendable, Hashable {
    package var initialDelay: Duration
    package var maximumDelay: Duration
    package var multiplier: Double
    /// The time budget from the first failure; when it runs out the
    /// operation fails with ``MemberStoreError/Code/unavailable``.
    package var giveUpAfter: Duration

    package init(
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
    package static let `default` = RetryPolicy()

    /// No retry at all: the first failure is the answer.
    package static let never = RetryPolicy(giveUpAfter: .zero)

    /// The backoff these settings describe.
    package var backoff: BackoffPolicy {
        BackoffPolicy(
            initialDelay: initialDelay, maximumDelay: maximumDelay, multiplier: multiplier, budget: giveUpAfter,
            budgetRule: .clipLastDelay)
    }
}
