import KindredSupport
import Testing

/// The backoff arithmetic, against the formulas of the five retry types it
/// replaced (copied here as they were), without clocks or I/O.
@Suite("Backoff")
struct BackoffTests {
    // The old formulas, verbatim in substance.

    /// MemberStore's `Backoff.delay(elapsed:)` before the merge: returns the sequence of delays.
    static func oldRetryPolicy(
        initial: Duration, maximum: Duration, multiplier: Double, giveUpAfter: Duration, elapsed: [Duration]
    ) -> [Duration?] {
        var next = initial
        return elapsed.map { elapsed in
            guard elapsed < giveUpAfter else { return nil }
            let delay = min(next, giveUpAfter - elapsed)
            next = min(maximum, next * multiplier)
            return delay
        }
    }

    /// `ReconnectBackoff.nominalDelay` and `RedisRetryPolicy.delay(beforeAttempt: n + 1)`.
    static func oldDoubling(base: Duration, max: Duration, failures: Int) -> Duration {
        var delay = base
        var doublings = failures - 1
        while doublings > 0 && delay < max {
            delay = delay * 2
            doublings -= 1
        }
        return min(delay, max)
    }

    /// `JobRetryPolicy.delay(afterFailures:random:)`.
    static func oldJob(base: Duration, max: Duration, jitter: Double, attempt: Int, u: Double) -> Duration {
        let exponent = min(Swift.max(attempt - 1, 0), 30)
        let seconds = min(base.inSeconds * Double(1 << exponent), max.inSeconds) * (1 + jitter * min(Swift.max(u, 0), 1))
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// `ClusterRouting.delayed` (delay before the budget check).
    static func oldCluster(initial: Duration, maximum: Duration, delays: Int) -> Duration {
        var delay = initial
        for _ in 0..<min(delays, 30) where delay < maximum { delay = delay * 2 }
        return min(delay, maximum)
    }

    @Test("the RetryPolicy shape (clipped budget) matches the old state machine", arguments: [
        (Duration.milliseconds(100), Duration.seconds(5), 2.0, Duration.seconds(60)),
        (.milliseconds(50), .milliseconds(500), 2.0, .seconds(2)),
        (.milliseconds(100), .seconds(5), 2.0, .seconds(5)),
        (.milliseconds(100), .seconds(5), 1.5, .seconds(30)),
        (.milliseconds(100), .seconds(5), 2.0, .zero),
    ])
    func retryPolicyParity(initial: Duration, maximum: Duration, multiplier: Double, budget: Duration) {
        let elapsed: [Duration] = (0..<40).map { .milliseconds(137 * $0 * $0) }
        let old = Self.oldRetryPolicy(
            initial: initial, maximum: maximum, multiplier: multiplier, giveUpAfter: budget, elapsed: elapsed)
        var backoff = Backoff(BackoffPolicy(
            initialDelay: initial, maximumDelay: maximum, multiplier: multiplier, budget: budget))
        let new = elapsed.map { backoff.next(elapsed: $0) }
        #expect(new == old)
    }

    @Test("equal-jitter doubling matches ReconnectBackoff and RedisRetryPolicy")
    func doublingParity() {
        for (base, max) in [(Duration.milliseconds(50), Duration.seconds(2)), (.seconds(1), .milliseconds(2500)),
                            (.milliseconds(1), .milliseconds(4)), (.milliseconds(7), .seconds(3))] {
            let policy = BackoffPolicy(initialDelay: base, maximumDelay: max, jitter: .equal)
            for failures in 1...64 {
                let nominal = Self.oldDoubling(base: base, max: max, failures: failures)
                #expect(policy.nominalDelay(afterFailures: failures) == nominal)
                for u in [0.0, 0.25, 0.5, 1.0] {
                    let half = nominal / 2
                    #expect(policy.delay(afterFailures: failures, jitter: u) == half + half * u)
                }
            }
        }
    }

    @Test("additive jitter matches JobRetryPolicy, rounding included")
    func additiveParity() {
        for (base, max, jitter) in [(Duration.seconds(1), Duration.seconds(60), 0.25), (.milliseconds(50), .milliseconds(200), 0.25),
                                    (.seconds(1), .seconds(10), 0.5), (.milliseconds(10), .milliseconds(20), 0.25),
                                    (.milliseconds(100), .seconds(1), 0.25), (.milliseconds(333), .seconds(45), 0.3)] {
            let policy = BackoffPolicy(initialDelay: base, maximumDelay: max, jitter: .additive(jitter))
            for attempt in 1...40 {
                for u in [0.0, 0.123, 0.5, 0.999, 1.0, -1, 3] {
                    #expect(policy.delay(afterFailures: attempt, jitter: u)
                        == Self.oldJob(base: base, max: max, jitter: jitter, attempt: attempt, u: u))
                }
            }
        }
    }

    @Test("jitter stays within its bounds")
    func jitterBounds() {
        let equal = BackoffPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(2), jitter: .equal)
        let additive = BackoffPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(2), jitter: .additive(0.25))
        for failures in 1...10 {
            let nominal = equal.nominalDelay(afterFailures: failures)
            for step in 0...20 {
                let u = Double(step) / 20
                let e = equal.delay(afterFailures: failures, jitter: u)
                #expect(e >= nominal / 2 && e <= nominal)
                let a = additive.delay(afterFailures: failures, jitter: u)
                #expect(a >= nominal && a <= nominal * 1.25)
            }
            #expect(equal.delay(afterFailures: failures, jitter: 9) == nominal, "u is clamped")
            #expect(equal.delay(afterFailures: failures, jitter: -9) == nominal / 2)
        }
    }

    @Test("refusing to overshoot the budget matches ClusterRouting")
    func refuseOvershootParity() {
        let policy = BackoffPolicy(
            initialDelay: .milliseconds(50), maximumDelay: .seconds(1), budget: .seconds(10), budgetRule: .refuseOvershoot)
        var backoff = Backoff(policy)
        var elapsed = Duration.zero
        var delays = 0
        while true {
            let old = Self.oldCluster(initial: .milliseconds(50), maximum: .seconds(1), delays: delays)
            let expected: Duration? = elapsed + old <= .seconds(10) ? old : nil
            let next = backoff.next(elapsed: elapsed)
            #expect(next == expected)
            guard let next else { break }
            delays += 1
            elapsed += next
        }
        #expect(delays == 13, "50, 100, 200, 400, 800 ms, then 1 s eight times: a ninth would end at 10.55 s")
    }

    @Test("max attempts counts the first attempt; reset starts over")
    func attemptsAndReset() {
        var backoff = Backoff(BackoffPolicy(initialDelay: .milliseconds(200), multiplier: 4, maxAttempts: 3))
        #expect(backoff.next() == .milliseconds(200))
        #expect(backoff.next() == .milliseconds(800))
        #expect(backoff.next() == nil, "3 attempts: 2 retries")
        #expect(backoff.retries == 2)
        backoff.reset()
        #expect(backoff.next() == .milliseconds(200))
        var once = Backoff(BackoffPolicy(initialDelay: .zero, maxAttempts: 1))
        #expect(once.next() == nil)
        var uncapped = Backoff(BackoffPolicy(initialDelay: .milliseconds(1)))
        for _ in 0..<100 { _ = uncapped.next() }
        #expect(uncapped.next() == .milliseconds(1) * (1 << 30), "the exponent stops at 30 steps")
    }
}
