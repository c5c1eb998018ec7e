import RedisClient
@testable import ScoreStore
import Scoring
import Testing
import TestSupport

/// The pure state machines, driven by a fake clock: every transition.
@Suite("Backoff and circuit breaker", .offCooperativePool)
struct BackoffAndBreakerTests {
    let t0 = ContinuousClock.now

    @Test func backoffDoublesFromTheBaseUpToTheMaximum() {
        let backoff = ReconnectBackoff(configuration: .init(baseDelay: .milliseconds(50), maxDelay: .milliseconds(300)))
        #expect(backoff.nominalDelay(afterFailures: 1) == .milliseconds(50))
        #expect(backoff.nominalDelay(afterFailures: 2) == .milliseconds(100))
        #expect(backoff.nominalDelay(afterFailures: 3) == .milliseconds(200))
        #expect(backoff.nominalDelay(afterFailures: 4) == .milliseconds(300))
        #expect(backoff.nominalDelay(afterFailures: 60) == .milliseconds(300))
    }

    @Test func defaultBackoffDoublesFrom50MillisecondsTo2Seconds() {
        let backoff = ReconnectBackoff()
        let delays = (1...9).map { backoff.nominalDelay(afterFailures: $0) }
        #expect(delays == [50, 100, 200, 400, 800, 1600, 2000, 2000, 2000].map { Duration.milliseconds($0) })
    }

    @Test func jitterSpreadsTheDelayOverItsUpperHalf() {
        #expect(ReconnectBackoff.jittered(.milliseconds(100), jitter: 0) == .milliseconds(50))
        #expect(ReconnectBackoff.jittered(.milliseconds(100), jitter: 1) == .milliseconds(100))
        #expect(ReconnectBackoff.jittered(.milliseconds(100), jitter: 0.5) == .milliseconds(75))
        #expect(ReconnectBackoff.jittered(.milliseconds(100), jitter: 7) == .milliseconds(100))
        #expect(ReconnectBackoff.jittered(.milliseconds(100), jitter: -1) == .milliseconds(50))
    }

    @Test func backoffGatesAttemptsUntilItsDelayPassedAndResetsOnSuccess() {
        var backoff = ReconnectBackoff(configuration: .init(baseDelay: .milliseconds(100), maxDelay: .seconds(1)))
        #expect(backoff.remainingDelay(at: t0) == .zero)
        backoff.recordFailure(at: t0, jitter: 1)
        #expect(backoff.consecutiveFailures == 1)
        #expect(backoff.remainingDelay(at: t0) == .milliseconds(100))
        #expect(backoff.remainingDelay(at: t0 + .milliseconds(60)) == .milliseconds(40))
        #expect(backoff.remainingDelay(at: t0 + .milliseconds(100)) == .zero)
        backoff.recordFailure(at: t0 + .milliseconds(100), jitter: 0)
        #expect(backoff.remainingDelay(at: t0 + .milliseconds(100)) == .milliseconds(100))  // 200 halved
        backoff.recordSuccess()
        #expect(backoff.consecutiveFailures == 0)
        #expect(backoff.remainingDelay(at: t0 + .milliseconds(100)) == .zero)
        backoff.recordFailure(at: t0, jitter: 1)
        #expect(backoff.remainingDelay(at: t0) == .milliseconds(100))
    }

    @Test func breakerOpensAfterKConsecutiveFailuresOnly() {
        var breaker = CircuitBreaker(configuration: .init(failureThreshold: 3, coolOff: .seconds(5)))
        #expect(breaker.state(at: t0) == .closed)
        do { let outcome = breaker.decide(at: t0); #expect(outcome == .allow) }
        do { let outcome = breaker.recordFailure(at: t0); #expect(!outcome) }
        do { let outcome = breaker.recordFailure(at: t0); #expect(!outcome) }
        breaker.recordSuccess()  // resets the count
        #expect(breaker.consecutiveFailures == 0)
        do { let outcome = breaker.recordFailure(at: t0); #expect(!outcome) }
        do { let outcome = breaker.recordFailure(at: t0); #expect(!outcome) }
        #expect(breaker.state(at: t0) == .closed)
        do { let outcome = breaker.recordFailure(at: t0); #expect(outcome) }  // the third in a row
        #expect(breaker.state(at: t0) == .open)
        do { let outcome = breaker.decide(at: t0 + .seconds(1)); #expect(outcome == .reject(retryAfter: .seconds(4))) }
        // A late failure of a call that started before it opened changes nothing.
        do { let outcome = breaker.recordFailure(at: t0 + .seconds(2)); #expect(!outcome) }
        do { let outcome = breaker.decide(at: t0 + .seconds(4)); #expect(outcome == .reject(retryAfter: .seconds(1))) }
    }

    @Test func afterTheCoolOffOneTrialGoesThroughAndItsSuccessCloses() {
        var breaker = CircuitBreaker(configuration: .init(failureThreshold: 1, coolOff: .seconds(5)))
        breaker.recordFailure(at: t0)
        #expect(breaker.state(at: t0 + .seconds(5)) == .halfOpen)
        do { let outcome = breaker.decide(at: t0 + .seconds(5)); #expect(outcome == .trial) }
        #expect(breaker.state(at: t0 + .seconds(5)) == .halfOpen)
        // Everyone else fails fast while the trial runs.
        do { let outcome = breaker.decide(at: t0 + .seconds(6)); #expect(outcome == .reject(retryAfter: .zero)) }
        breaker.recordSuccess()
        #expect(breaker.state(at: t0 + .seconds(6)) == .closed)
        do { let outcome = breaker.decide(at: t0 + .seconds(6)); #expect(outcome == .allow) }
    }

    @Test func aFailedTrialOpensForAnotherCoolOff() {
        var breaker = CircuitBreaker(configuration: .init(failureThreshold: 2, coolOff: .seconds(5)))
        breaker.recordFailure(at: t0)
        breaker.recordFailure(at: t0)
        do { let outcome = breaker.decide(at: t0 + .seconds(5)); #expect(outcome == .trial) }
        do { let outcome = breaker.recordFailure(at: t0 + .seconds(5)); #expect(outcome) }
        #expect(breaker.state(at: t0 + .seconds(9)) == .open)
        do { let outcome = breaker.decide(at: t0 + .seconds(9)); #expect(outcome == .reject(retryAfter: .seconds(1))) }
        do { let outcome = breaker.decide(at: t0 + .seconds(10)); #expect(outcome == .trial) }
    }

    @Test func anAbandonedTrialHandsTheTrialToTheNextCaller() {
        var breaker = CircuitBreaker(configuration: .init(failureThreshold: 1, coolOff: .seconds(1)))
        breaker.recordFailure(at: t0)
        do { let outcome = breaker.decide(at: t0 + .seconds(1)); #expect(outcome == .trial) }
        breaker.trialAbandoned()
        do { let outcome = breaker.decide(at: t0 + .seconds(1)); #expect(outcome == .trial) }
        breaker.trialAbandoned()
        breaker.trialAbandoned()  // harmless twice, and when closed
        breaker.recordSuccess()
        breaker.trialAbandoned()
        #expect(breaker.state(at: t0) == .closed)
    }
}

@Suite("Shard endpoints", .offCooperativePool)
struct ShardEndpointTests {
    @Test func parsesHostAndPort() throws {
        let endpoint = try ShardEndpoint(id: 4, url: "redis://10.0.0.5:7000")
        #expect(endpoint == ShardEndpoint(id: 4, host: "10.0.0.5", port: 7000))
        #expect(endpoint.url == "redis://10.0.0.5:7000")
        #expect(try ShardEndpoint(id: 1, url: "redis://cache.local").port == 6379)
        #expect(try ShardEndpoint(id: 1, url: "redis://cache.local:6380/").port == 6380)
        let v6 = try ShardEndpoint(id: 1, url: "redis://[::1]:7001")
        #expect(v6.host == "::1" && v6.port == 7001)
        #expect(v6.url == "redis://[::1]:7001")
        let managed = try ShardEndpoint(id: 2, url: "redis://kindred:s%3Acret@10.0.0.5:7000/4")
        #expect(managed.address.user == "kindred" && managed.address.password == "s:cret" && managed.address.database == 4)
        #expect(managed.description == "shard 2 (redis://kindred:***@10.0.0.5:7000/4)")
    }

    @Test(arguments: [
        "http://h:1", "redis://", "redis://:7000", "redis://h:0", "redis://h:65536", "redis://h:x",
        "redis://u@h:1", "redis://h:1/x", "redis://h:1?db=2", "redis://[::1", "redis://h:+1",
    ])
    func rejectsWhatIsNotAShardURL(_ url: String) {
        let error = #expect(throws: ScoreStoreError.self) { try ShardEndpoint(id: 9, url: url) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.shard == 9)
    }
}

@Suite("Stored value parsing", .offCooperativePool)
struct StoredValueParsingTests {
    @Test func theFastScoreParserAgreesWithScoreParse() {
        var inputs: [[UInt8]] = []
        let alphabet: [UInt8] = Array("0123456789.-+ x".utf8)
        for a in alphabet { for b in alphabet { for c in alphabet { inputs.append([a, b, c]) } } }
        for tenths in 0...100 { inputs.append(Array(Score.format(tenths: tenths).utf8)) }
        inputs += ["10.0", "10.1", "09.5", "100.0", "", "1", "1.", ".5", "1.00", "10.00", "11.0"].map { Array($0.utf8) }
        for input in inputs {
            #expect(ScoreStore.parseTenths(input) == Score.parse(utf8: input), "\(input)")
        }
    }

    @Test func memberIDsAreDecimalWithoutLeadingZeros() {
        #expect(ScoreStore.parseID(Array("1".utf8)) == 1)
        #expect(ScoreStore.parseID(Array("4294967295".utf8)) == 4_294_967_295)
        for bad in ["", "0", "01", "4294967296", "12345678901", "-1", "1a", " 1"] {
            #expect(ScoreStore.parseID(Array(bad.utf8)) == nil, "\(bad)")
        }
    }
}
