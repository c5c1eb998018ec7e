/// How a retry loop waits between attempts: the one backoff arithmetic of
/// the code base. A pure value; ``Backoff`` is the state of one loop.
///
/// After `n` failures the nominal delay is `initialDelay * multiplier^(n-1)`
/// (at most 30 steps), capped at ``maximumDelay``; ``jitter`` then spreads
/// it. ``maxAttempts`` and ``budget`` bound the loop. The domain policies
/// (`RetryPolicy`, `RedisRetryPolicy`, `JobRetryPolicy`,
/// `ClusterRouting.Policy`, `ReconnectBackoff.Configuration`) keep their
/// configuration fields and defaults and compute through this type.
package struct BackoffPolicy: Sendable, Hashable {
    package enum Jitter: Sendable, Hashable {
        /// The nominal delay as it is.
        case none
        /// "Equal jitter": the delay `d` spread into `[d/2, d]` (never zero,
        /// so a flapping peer is not hammered; spread, so callers do not
        /// come back in step).
        case equal
        /// `d * (1 + fraction * u)`, computed in seconds as a `Double` (as
        /// the queue's Lua script does) and rounded to whole milliseconds.
        case additive(Double)
    }

    /// What happens when the next delay would reach past ``budget``.
    package enum BudgetRule: Sendable, Hashable {
        /// The last delay is clipped so the last attempt comes at the
        /// deadline; nothing is granted once the budget is spent.
        case clipLastDelay
        /// Give up when elapsed time plus the next delay passes the budget.
        case refuseOvershoot
    }

    /// The delay after the first failure.
    package var initialDelay: Duration
    /// The longest single delay (before jitter), the first one included;
    /// nil: uncapped.
    package var maximumDelay: Duration?
    /// The growth per failure (2: doubling).
    package var multiplier: Double
    package var jitter: Jitter
    /// Attempts in all, the first included; nil: unbounded.
    package var maxAttempts: Int?
    /// The time allowed from the first failure; nil: unbounded.
    package var budget: Duration?
    package var budgetRule: BudgetRule

    package init(
        initialDelay: Duration, maximumDelay: Duration? = nil, multiplier: Double = 2, jitter: Jitter = .none,
        maxAttempts: Int? = nil, budget: Duration? = nil, budgetRule: BudgetRule = .clipLastDelay
    ) {
        precondition(initialDelay >= .zero && multiplier >= 1, "need a delay >= 0 that does not shrink")
        precondition(maxAttempts.map { $0 >= 1 } ?? true, "maxAttempts counts the first attempt: at least 1")
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.multiplier = multiplier
        self.jitter = jitter
        self.maxAttempts = maxAttempts
        self.budget = budget
        self.budgetRule = budgetRule
    }

    /// The delay after `failures` failures (>= 1), before jitter.
    package func nominalDelay(afterFailures failures: Int) -> Duration {
        precondition(failures >= 1, "a delay follows at least one failure")
        var delay = initialDelay
        var steps = min(failures - 1, 30)
        while steps > 0 && maximumDelay.map({ delay < $0 }) ?? true {
            // Doubling stays in integer attoseconds; other factors go through Double.
            delay = multiplier == 2 ? delay * 2 : delay * multiplier
            steps -= 1
        }
        return maximumDelay.map { min(delay, $0) } ?? delay
    }

    /// The delay after `failures` failures (>= 1) with ``jitter`` applied;
    /// `u` is the random draw, clamped to `0...1`.
    package func delay(afterFailures failures: Int, jitter u: Double) -> Duration {
        let u = min(1, max(0, u))
        switch jitter {
        case .none:
            return nominalDelay(afterFailures: failures)
        case .equal:
            return Self.equalJitter(nominalDelay(afterFailures: failures), u)
        case .additive(let fraction):
            var factor = 1.0
            for _ in 0..<min(failures - 1, 30) { factor *= multiplier }
            let capped = min(initialDelay.inSeconds * factor, maximumDelay?.inSeconds ?? .infinity)
            return .milliseconds(Int64((capped * (1 + fraction * u) * 1000).rounded()))
        }
    }

    /// `nominal` spread into `[nominal/2, nominal]` by `u` (clamped to `0...1`).
    package static func equalJitter(_ nominal: Duration, _ u: Double) -> Duration {
        let half = nominal / 2
        return half + half * min(1, max(0, u))
    }
}

/// The backoff state of one retry loop: how many retries it was granted. A
/// pure state machine (no clock, no I/O): the caller passes the time since
/// the first failure and the jitter draw, so tests drive it directly.
package struct Backoff: Sendable, Hashable {
    package let policy: BackoffPolicy
    /// Retries granted since the start or the last ``reset()``.
    package private(set) var retries = 0

    package init(_ policy: BackoffPolicy) {
        self.policy = policy
    }

    /// After one more failure, `elapsed` after the first: the delay before
    /// the next attempt, or nil when the loop must give up (attempts or
    /// budget spent).
    package mutating func next(elapsed: Duration = .zero, jitter u: Double = 0) -> Duration? {
        if let maxAttempts = policy.maxAttempts, retries + 1 >= maxAttempts { return nil }
        var delay = policy.delay(afterFailures: retries + 1, jitter: u)
        if let budget = policy.budget {
            switch policy.budgetRule {
            case .clipLastDelay:
                guard elapsed < budget else { return nil }
                delay = min(delay, budget - elapsed)
            case .refuseOvershoot:
                guard elapsed + delay <= budget else { return nil }
            }
        }
        retries += 1
        return delay
    }

    /// A success: the next failure starts again from the initial delay.
    package mutating func reset() {
        retries = 0
    }
}
