/// A shard's circuit breaker, as a pure state machine.
///
/// - *closed*: calls go through; transport failures are counted, a success
///   resets the count. The `failureThreshold`-th failure in a row opens it.
/// - *open*: calls are rejected at once (no connect attempt, no wait) until
///   `coolOff` has passed since it opened.
/// - *half-open*: after the cool-off, exactly one caller gets a *trial*;
///   everyone else is still rejected while it runs. The trial's success
///   closes the breaker; its failure opens it for another cool-off. A trial
///   that ended without reaching the shard (``trialAbandoned()``) lets the
///   next caller try.
///
/// No I/O and no clock reads: every method takes the current instant.
package struct CircuitBreaker: Sendable, Hashable {
    package struct Configuration: Sendable, Hashable {
        /// Consecutive transport failures that open the breaker (K).
        package var failureThreshold: Int
        /// How long the breaker stays open before a trial.
        package var coolOff: Duration

        package init(failureThreshold: Int = 3, coolOff: Duration = .seconds(5)) {
            precondition(failureThreshold >= 1, "failureThreshold must be at least 1")
            precondition(coolOff >= .zero, "coolOff must not be negative")
            self.failureThreshold = failureThreshold
            self.coolOff = coolOff
        }
    }

    /// The breaker's state, as metrics show it.
    package enum State: String, Sendable, Hashable {
        case closed, open, halfOpen = "half-open"
    }

    /// What a caller may do now.
    package enum Decision: Sendable, Hashable {
        /// Go ahead.
        case allow
        /// Go ahead as the one trial; report the outcome.
        case trial
        /// Fail fast; a trial may happen after this long.
        case reject(retryAfter: Duration)
    }

    private enum Phase: Sendable, Hashable {
        case closed(failures: Int)
        case open(until: ContinuousClock.Instant)
        case halfOpen(trialInFlight: Bool)
    }

    package let configuration: Configuration
    private var phase: Phase = .closed(failures: 0)

    package init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The state now: an open breaker whose cool-off has passed shows as half-open.
    package func state(at now: ContinuousClock.Instant) -> State {
        switch phase {
        case .closed: .closed
        case .open(let until): now >= until ? .halfOpen : .open
        case .halfOpen: .halfOpen
        }
    }

    /// Consecutive failures counted while closed.
    package var consecutiveFailures: Int {
        if case .closed(let failures) = phase { return failures }
        return configuration.failureThreshold
    }

    /// Decides for one caller at `now`. Granting a trial is a state change:
    /// the caller must report its outcome with ``recordSuccess()``,
    /// ``recordFailure(at:)`` or ``trialAbandoned()``.
    package mutating func decide(at now: ContinuousClock.Instant) -> Decision {
        switch phase {
        case .closed:
            return .allow
        case .open(let until):
            if now < until { return .reject(retryAfter: now.duration(to: until)) }
            phase = .halfOpen(trialInFlight: true)
            return .trial
        case .halfOpen(let trialInFlight):
            if trialInFlight { return .reject(retryAfter: .zero) }
            phase = .halfOpen(trialInFlight: true)
            return .trial
        }
    }

    /// The shard answered: closes the breaker and resets the count.
    package mutating func recordSuccess() {
        phase = .closed(failures: 0)
    }

    /// A transport failure at `now`. Returns true when this opened the breaker.
    @discardableResult
    package mutating func recordFailure(at now: ContinuousClock.Instant) -> Bool {
        switch phase {
        case .closed(let failures):
            if failures + 1 >= configuration.failureThreshold {
                phase = .open(until: now + configuration.coolOff)
                return true
            }
            phase = .closed(failures: failures + 1)
            return false
        case .halfOpen:
            phase = .open(until: now + configuration.coolOff)
            return true
        case .open:
            // A call that started before the breaker opened failed late: the
            // cool-off already runs.
            return false
        }
    }

    /// The trial ended without learning anything about the shard (the
    /// caller gave up before reaching it): the next caller gets the trial.
    package mutating func trialAbandoned() {
        if case .halfOpen = phase { phase = .halfOpen(trialInFlight: false) }
    }
}
