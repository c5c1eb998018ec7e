import KindredSupport

/// When to try connecting to a shard again after connect attempts failed:
/// exponential backoff with jitter, as a pure state machine.
///
/// After the n-th consecutive failure the next attempt waits
/// `d = min(maxDelay, baseDelay * 2^(n-1))`, jittered into `[d/2, d]`
/// ("equal jitter": never zero, so a flapping shard is not hammered, and
/// spread, so many processes do not reconnect in step). A success resets it.
///
/// No I/O and no clock reads: every method takes the current instant and the
/// jitter (a number in `0...1` from an injectable source), so tests drive it
/// with a fake clock.
package struct ReconnectBackoff: Sendable, Hashable {
    package struct Configuration: Sendable, Hashable {
        package var baseDelay: Duration
        package var maxDelay: Duration

        package init(baseDelay: Duration = .milliseconds(50), maxDelay: Duration = .seconds(2)) {
            precondition(baseDelay > .zero && maxDelay >= baseDelay, "need 0 < baseDelay <= maxDelay")
            self.baseDelay = baseDelay
            self.maxDelay = maxDelay
        }

        /// The backoff these settings describe.
        package var backoff: BackoffPolicy {
            BackoffPolicy(initialDelay: baseDelay, maximumDelay: maxDelay, jitter: .equal)
        }
    }

    package let configuration: Configuration
    /// Connect attempts that failed in a row.
    package private(set) var consecutiveFailures = 0
    /// No attempt before this instant; nil when the last attempt succeeded.
    package private(set) var notBefore: ContinuousClock.Instant?

    package init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The delay after `failures` consecutive failures (>= 1), before jitter.
    package func nominalDelay(afterFailures failures: Int) -> Duration {
        configuration.backoff.nominalDelay(afterFailures: failures)
    }

    /// `nominal` jittered into `[nominal/2, nominal]`; `jitter` is clamped to `0...1`.
    package static func jittered(_ nominal: Duration, jitter: Double) -> Duration {
        BackoffPolicy.equalJitter(nominal, jitter)
    }

    /// How long a caller must wait at `now` before attempting; zero when it may go.
    package func remainingDelay(at now: ContinuousClock.Instant) -> Duration {
        guard let notBefore, now < notBefore else { return .zero }
        return now.duration(to: notBefore)
    }

    /// A connect attempt failed at `now`.
    package mutating func recordFailure(at now: ContinuousClock.Instant, jitter: Double) {
        consecutiveFailures += 1
        notBefore = now + configuration.backoff.delay(afterFailures: consecutiveFailures, jitter: jitter)
    }

    /// A connect attempt succeeded: the next failure starts from the base delay.
    package mutating func recordSuccess() {
        consecutiveFailures = 0
        notBefore = nil
    }
}
