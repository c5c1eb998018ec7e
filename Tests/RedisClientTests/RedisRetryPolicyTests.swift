import RedisClient
import Testing
import TestSupport

/// Backoff arithmetic and the retryable replies, without I/O.
@Suite("RedisRetryPolicy", .offCooperativePool)
struct RedisRetryPolicyTests {
    @Test func defaultDelaysDoubleFrom50Milliseconds() {
        let policy = RedisRetryPolicy.default
        let delays = (2...policy.maxAttempts).map { policy.delay(beforeAttempt: $0) }
        #expect(delays == [.milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800)])
    }

    @Test func delaysAreCappedAtMaxDelay() {
        let policy = RedisRetryPolicy(maxAttempts: 100, baseDelay: .seconds(1), maxDelay: .milliseconds(2500))
        #expect(policy.delay(beforeAttempt: 2) == .seconds(1))
        #expect(policy.delay(beforeAttempt: 3) == .seconds(2))
        #expect(policy.delay(beforeAttempt: 4) == .milliseconds(2500))
        #expect(policy.delay(beforeAttempt: 100) == .milliseconds(2500))  // no overflow
    }

    @Test func noneMakesOneAttempt() {
        #expect(RedisRetryPolicy.none.maxAttempts == 1)
    }

    @Test(arguments: [
        ("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", true),
        ("LOADING Redis is loading the dataset in memory", true),
        ("BUSYKEY Target key name already exists.", false),
        ("BUSYGROUP Consumer Group name already exists", false),
        ("ERR unknown command", false),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", false),
        ("BUSY", true),
    ])
    func retryableReplies(message: String, retryable: Bool) {
        #expect(RedisRetryPolicy.isRetryable(errorMessage: message) == retryable)
    }
}
