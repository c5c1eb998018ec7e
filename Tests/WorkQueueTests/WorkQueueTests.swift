import Foundation
import RedisClient
import Testing
import TestSupport
import WorkQueue

/// The queue against a real redis-server: one server per test.
@Suite("Work queue", .timeLimit(.minutes(1)), .offCooperativePool)
struct WorkQueueTests {
    let queue = WorkQueue(retry: JobRetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50), maxDelay: .milliseconds(200)))

    func fetchAll(_ worker: String, _ redis: RedisConnection) throws -> [Job] {
        var jobs: [Job] = []
        while let job = try queue.fetch(worker: worker, on: QueueConnection(redis)) { jobs.append(job) }
        return jobs
    }

    @Test("a queue URL with an ACL user and a database number: the queue's keys and scripts live in that database")
    func managedQueue() throws {
        let server = try RedisServer(options: .init(password: "queue:admin@pw"))
        let admin = try server.connect()
        _ = try admin.sendChecked(["ACL", "SETUSER", "worker", "on", ">w%rk/pw", "~*", "+@all"])
        let url = try RedisURL("redis://worker:w%25rk%2Fpw@127.0.0.1:\(server.port)/5")
        let redis = try RedisConnection(configuration: url.configuration())
        try queue.enqueue([11, 12], priority: .repair, on: QueueConnection(redis))
        try redis.reconnect()  // AUTH and SELECT again before the scripts run
        #expect(try fetchAll("w1", redis).map(\.member) == [11, 12])
        #expect(try admin.sendChecked(["DBSIZE"]).int == 0, "nothing in database 0")
        _ = try admin.sendChecked(["SELECT", "5"])
        #expect(try admin.sendChecked(["DBSIZE"]).int ?? 0 > 0, "the queue's keys are in database 5")
        let denied = #expect(throws: RedisError.self) {
            try RedisConnection(configuration: RedisURL(host: "127.0.0.1", port: Int(server.port), user: "worker", password: "nope", database: 5).configuration())
        }
        #expect(denied?.code == .authenticationFailed)
        #expect(denied?.description.contains("w%rk") == false)
    }

    @Test("priorities are served strictly in order, first in first out within one")
    func strictPriority() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([1, 2], priority: .backfill, on: QueueConnection(redis))
        try queue.enqueue([3], priority: .repair, on: QueueConnection(redis))
        try queue.enqueue([4, 5], priority: .interactive, on: QueueConnection(redis))
        try queue.enqueue([6], priority: .repair, on: QueueConnection(redis))
        let jobs = try fetchAll("w1", redis)
        #expect(jobs.map(\.member) == [4, 5, 3, 6, 1, 2])
        #expect(jobs.map(\.priority) == [.interactive, .interactive, .repair, .repair, .backfill, .backfill])
        #expect(jobs.allSatisfy { $0.attempts == 0 && $0.startedAt >= $0.enqueuedAt })
    }

    @Test("a member queued again while waiting is not queued twice; a more urgent queueing promotes it")
    func dedupeAndPromote() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        var result = try queue.enqueue([7, 8], priority: .backfill, on: QueueConnection(redis))
        #expect(result.enqueued == 2)
        result = try queue.enqueue([7, 7], priority: .backfill, on: QueueConnection(redis))
        #expect(result.enqueued == 0 && result.alreadyWaiting == 2)
        try queue.enqueue([9], priority: .interactive, on: QueueConnection(redis))
        result = try queue.enqueue([8], priority: .interactive, on: QueueConnection(redis))
        #expect(result.promoted == 1)
        // Less urgent than where it waits: no change.
        result = try queue.enqueue([9], priority: .repair, on: QueueConnection(redis))
        #expect(result.alreadyWaiting == 1)
        var stats = try queue.stats(on: QueueConnection(redis))
        #expect(stats.waiting == [.interactive: 2, .repair: 0, .backfill: 1])
        let jobs = try fetchAll("w1", redis)
        // 8 once, at interactive; its stale backfill entry is skipped.
        #expect(jobs.map(\.member) == [9, 8, 7])
        #expect(jobs.map(\.priority) == [.interactive, .interactive, .backfill])
        stats = try queue.stats(on: QueueConnection(redis))
        #expect(stats.waiting == [.interactive: 0, .repair: 0, .backfill: 0])
        #expect(stats.processing == 3)
        // Taken members may be queued again (their data may have changed meanwhile).
        #expect(try queue.enqueue([8], priority: .interactive, on: QueueConnection(redis)).enqueued == 1)
    }

    @Test("complete drops the job; completing twice is harmless")
    func complete() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([11], priority: .interactive, on: QueueConnection(redis))
        let job = try #require(try queue.fetch(worker: "w1", on: QueueConnection(redis)))
        #expect(try queue.stats(on: QueueConnection(redis)).processing == 1)
        #expect(try queue.complete(job, worker: "w1", on: QueueConnection(redis)))
        #expect(!(try queue.complete(job, worker: "w1", on: QueueConnection(redis))))
        let stats = try queue.stats(on: QueueConnection(redis))
        #expect(stats.processing == 0 && stats.waiting.values.reduce(0, +) == 0)
    }

    @Test("a failed job comes back after its backoff, then dies after the last attempt, then can be re-driven")
    func retryAndDeadLetter() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([21], priority: .repair, on: QueueConnection(redis))
        var job = try #require(try queue.fetch(worker: "w1", on: QueueConnection(redis)))
        for attempt in 1...2 {
            guard case .retry(let at, let n) = try queue.fail(job, worker: "w1", reason: "shard 2 down", random: 0, on: QueueConnection(redis)) else {
                Issue.record("attempt \(attempt) did not retry")
                return
            }
            #expect(n == attempt)
            // Not before its time...
            let early = try queue.fetch(worker: "w1", on: QueueConnection(redis))
            #expect(early == nil || early!.startedAt >= at)
            // ...and back once due.
            var next = early
            try poll(until: "the retry of attempt \(attempt) to become due", timeout: .seconds(5)) {
                if next == nil { next = try queue.fetch(worker: "w1", on: QueueConnection(redis)) }
                return next != nil
            }
            job = next!
            #expect(job.member == 21 && job.attempts == attempt && job.priority == .repair)
        }
        #expect(try queue.fail(job, worker: "w1", reason: "shard 2 down", on: QueueConnection(redis)) == .dead(attempts: 3))
        let dead = try queue.deadJobs(on: QueueConnection(redis))
        #expect(dead.count == 1)
        #expect(dead.first?.member == 21 && dead.first?.reason == "shard 2 down" && dead.first?.attempts == 3)
        #expect(try queue.stats(on: QueueConnection(redis)).dead == 1)
        // A failure reported for a job no longer held changes nothing.
        #expect(try queue.fail(job, worker: "w1", reason: "again", on: QueueConnection(redis)) == .notHeld)
        #expect(try queue.retryDead(nil, on: QueueConnection(redis)) == 1)
        let again = try #require(try queue.fetch(worker: "w2", on: QueueConnection(redis)))
        #expect(again.member == 21 && again.attempts == 0 && again.priority == .repair)
        #expect(try queue.deadJobs(on: QueueConnection(redis)).isEmpty)
    }

    @Test("a job postponed for a shard outage comes back with a growing delay, never uses up an attempt, never dies")
    func postpone() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([27], priority: .interactive, on: QueueConnection(redis))
        var job = try #require(try queue.fetch(worker: "w1", on: QueueConnection(redis)))
        var delays: [Int64] = []
        var slack: [Int64] = []
        for round in 1...5 {  // more than maxAttempts (3)
            let before = try serverMilliseconds(redis)
            guard case .postponed(let at, let times) = try queue.postpone(job, worker: "w1", random: 0, on: QueueConnection(redis)) else {
                Issue.record("postponement \(round) was refused")
                return
            }
            let after = try serverMilliseconds(redis)
            #expect(times == round)
            // The script ran between the two readings of the server's clock.
            delays.append(at - before)
            slack.append(after - before)
            #expect(try queue.stats(on: QueueConnection(redis)).delayed == 1)
            // Due at once (no sleeping in tests): the job comes back with no attempt counted.
            let entry = try #require(try redis.send(["ZRANGE", "kq:delayed", "0", "0"]).array?.first?.string)
            _ = try redis.send(["ZADD", "kq:delayed", "0", entry])
            job = try #require(try queue.fetch(worker: "w1", on: QueueConnection(redis)))
            #expect(job.member == 27 && job.attempts == 0 && job.priority == .interactive)
        }
        // 50, 100, 200 (capped), 200, 200 ms: doubling from the base to the cap.
        let expected: [Int64] = [50, 100, 200, 200, 200]
        #expect(zip(zip(delays, slack), expected).allSatisfy { $0.0.0 >= $0.1 && $0.0.0 <= $0.1 + $0.0.1 + 1 }, "\(delays) (clock readings \(slack) ms apart)")
        #expect(try queue.deadJobs(on: QueueConnection(redis)).isEmpty)
        // A real failure still counts from zero; completing forgets the postponements.
        guard case .retry(_, let attempt) = try queue.fail(job, worker: "w1", reason: "boom", random: 0, on: QueueConnection(redis)) else {
            Issue.record("the failure after postponements did not retry")
            return
        }
        #expect(attempt == 1)
        let entry = try #require(try redis.send(["ZRANGE", "kq:delayed", "0", "0"]).array?.first?.string)
        _ = try redis.send(["ZADD", "kq:delayed", "0", entry])
        job = try #require(try queue.fetch(worker: "w1", on: QueueConnection(redis)))
        #expect(try queue.complete(job, worker: "w1", on: QueueConnection(redis)))
        #expect(try redis.send(["HLEN", "kq:postponed"]).int == 0 && redis.send(["HLEN", "kq:attempts"]).int == 0)
        // A postponement for a job no longer held changes nothing.
        #expect(try queue.postpone(job, worker: "w1", on: QueueConnection(redis)) == .notHeld)
    }

    @Test("a postponement behind another job of the same member uses its own short delays, not the outage policy's")
    func postponeWithOwnDelays() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try slowQueue.enqueue([31], priority: .interactive, on: QueueConnection(redis))
        var job = try #require(try slowQueue.fetch(worker: "w1", on: QueueConnection(redis)))
        var delays: [Int64] = []
        var slack: [Int64] = []
        for round in 1...4 {
            let before = try serverMilliseconds(redis)
            guard case .postponed(let at, _) = try slowQueue.postpone(
                job, worker: "w1", baseDelay: .milliseconds(100), maxDelay: .milliseconds(300), random: 0, on: QueueConnection(redis))
            else {
                Issue.record("postponement \(round) was refused")
                return
            }
            let after = try serverMilliseconds(redis)
            delays.append(at - before)
            slack.append(after - before)
            try makeDue(redis)
            job = try #require(try slowQueue.fetch(worker: "w1", on: QueueConnection(redis)))
        }
        // 100, 200, 300 (capped), 300 ms, where the queue's own policy starts at 10 s.
        let expected: [Int64] = [100, 200, 300, 300]
        #expect(zip(zip(delays, slack), expected).allSatisfy { $0.0.0 >= $0.1 && $0.0.0 <= $0.1 + $0.0.1 + 1 }, "\(delays) (clock readings \(slack) ms apart)")
    }

    /// A queue whose retries and postponements wait 10 s and more: never due
    /// during a test unless the test makes them due.
    let slowQueue = WorkQueue(retry: JobRetryPolicy(maxAttempts: 3, baseDelay: .seconds(10), maxDelay: .seconds(60)))

    /// The delayed runs: member -> (due time, `priority:enqueuedAt`).
    func delayedRuns(_ redis: RedisConnection) throws -> [String: (at: Int64, job: String?)] {
        let flat = try #require(try redis.send(["ZRANGE", "kq:delayed", "0", "-1", "WITHSCORES"]).array?.compactMap(\.string))
        var runs: [String: (at: Int64, job: String?)] = [:]
        for i in stride(from: 0, to: flat.count, by: 2) {
            runs[flat[i]] = (Int64(flat[i + 1]) ?? -1, try redis.send(["HGET", "kq:delayed:jobs", flat[i]]).string)
        }
        return runs
    }

    /// Makes every delayed run due now.
    func makeDue(_ redis: RedisConnection) throws {
        for member in try delayedRuns(redis).keys { _ = try redis.send(["ZADD", "kq:delayed", "0", member]) }
    }

    @Test("a member keeps one delayed run however often their jobs are postponed or retried: the earliest time, the most urgent priority, the first enqueue time")
    func oneDelayedRunPerMember() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        // Three jobs of member 5 in flight at once (queued again while each ran).
        var jobs: [Job] = []
        for (worker, priority) in [("w1", JobPriority.backfill), ("w2", .repair), ("w3", .interactive)] {
            #expect(try queue.enqueue([5], priority: priority, on: QueueConnection(redis)).enqueued == 1)
            jobs.append(try #require(try queue.fetch(worker: worker, on: QueueConnection(redis))))
        }
        #expect(jobs.map(\.member) == [5, 5, 5])
        guard case .postponed(let slowAt, 1) = try slowQueue.postpone(jobs[0], worker: "w1", random: 0, on: QueueConnection(redis)) else {
            Issue.record("the first postponement was refused")
            return
        }
        // Postponed again, sooner (the fast queue's 100 ms): the one run takes the earlier time.
        guard case .postponed(let at, 2) = try queue.postpone(jobs[1], worker: "w2", random: 0, on: QueueConnection(redis)) else {
            Issue.record("the second postponement was refused")
            return
        }
        #expect(at < slowAt)
        // Retried later (the slow queue's 10 s): the earlier time stays.
        #expect(try slowQueue.fail(jobs[2], worker: "w3", reason: "boom", random: 0, on: QueueConnection(redis)) == .retry(at: at, attempt: 1))
        let runs = try delayedRuns(redis)
        #expect(runs.count == 1)
        #expect(runs["5"]?.at == at)
        #expect(runs["5"]?.job == "0:\(jobs[0].enqueuedAt)", "the most urgent priority and the first enqueue time")
        let stats = try queue.stats(on: QueueConnection(redis))
        #expect(stats.delayed == 1 && stats.processing == 0 && stats.waiting.values.reduce(0, +) == 0)
        try makeDue(redis)
        let again = try fetchAll("w4", redis)
        #expect(again.map(\.member) == [5], "one run, not three")
        #expect(again.first?.priority == .interactive && again.first?.enqueuedAt == jobs[0].enqueuedAt)
        #expect(try delayedRuns(redis).isEmpty && redis.send(["HLEN", "kq:delayed:jobs"]).int == 0)
    }

    @Test("queueing a member whose run is delayed queues nothing new; a more urgent request raises its priority and keeps its time; once taken, the member may be queued again")
    func enqueueWhileDelayed() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([7], priority: .repair, on: QueueConnection(redis))
        let job = try #require(try queue.fetch(worker: "w1", on: QueueConnection(redis)))
        guard case .postponed(let at, _) = try slowQueue.postpone(job, worker: "w1", random: 0, on: QueueConnection(redis)) else {
            Issue.record("the postponement was refused")
            return
        }
        var onlyDelayed = EnqueueResult()
        onlyDelayed.alreadyDelayed = 1
        for priority in [JobPriority.repair, .backfill, .repair] {
            #expect(try queue.enqueue([7], priority: priority, on: QueueConnection(redis)) == onlyDelayed, "\(priority)")
        }
        #expect(try queue.enqueue([7], priority: .interactive, on: QueueConnection(redis)).promoted == 1)
        #expect(try queue.enqueue([7], priority: .interactive, on: QueueConnection(redis)).alreadyDelayed == 1)
        var stats = try queue.stats(on: QueueConnection(redis))
        #expect(stats.waiting.values.reduce(0, +) == 0 && stats.delayed == 1)
        #expect(try delayedRuns(redis)["7"].map { "\($0.at) \($0.job ?? "")" } == "\(at) 0:\(job.enqueuedAt)")
        #expect(try queue.fetch(worker: "w1", on: QueueConnection(redis)) == nil, "not due: the requests did not bring it forward")
        try makeDue(redis)
        let taken = try fetchAll("w1", redis)
        #expect(taken.map(\.member) == [7])
        #expect(taken.first?.priority == .interactive && taken.first?.enqueuedAt == job.enqueuedAt)
        // In flight: a request now may come after the job read MySQL, so it queues one more run.
        #expect(try queue.enqueue([7], priority: .backfill, on: QueueConnection(redis)).enqueued == 1)
        stats = try queue.stats(on: QueueConnection(redis))
        #expect(stats.waiting[.backfill] == 1 && stats.processing == 1 && stats.delayed == 0)
    }

    @Test("a job postponed or retried while its member was queued again merges into the waiting run; the in-flight request is not lost")
    func postponeWhileWaiting() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([9, 10], priority: .interactive, on: QueueConnection(redis))
        let first = try #require(try queue.fetch(worker: "w1", on: QueueConnection(redis)))
        let second = try #require(try queue.fetch(worker: "w1", on: QueueConnection(redis)))
        #expect([first.member, second.member] == [9, 10])
        #expect(try queue.enqueue([9, 10], priority: .backfill, on: QueueConnection(redis)).enqueued == 2)
        let now = try serverMilliseconds(redis)
        guard case .postponed(let at, 1) = try slowQueue.postpone(first, worker: "w1", random: 0, on: QueueConnection(redis)) else {
            Issue.record("the postponement was refused")
            return
        }
        #expect(at >= now && at < now + 5_000, "the waiting run comes now, not in 10 s")
        guard case .retry(let retryAt, 1) = try slowQueue.fail(second, worker: "w1", reason: "boom", random: 0, on: QueueConnection(redis)) else {
            Issue.record("the retry was refused")
            return
        }
        #expect(retryAt >= now && retryAt < now + 5_000)
        let stats = try queue.stats(on: QueueConnection(redis))
        #expect(stats.delayed == 0 && stats.processing == 0)
        #expect(stats.waiting == [.interactive: 2, .repair: 0, .backfill: 0], "the waiting runs took the jobs' priority")
        let runs = try fetchAll("w2", redis)
        #expect(runs.map(\.member) == [9, 10], "one run each; the stale backfill entries are skipped")
        #expect(runs.map(\.enqueuedAt) == [first.enqueuedAt, second.enqueuedAt])
        #expect(runs.last?.attempts == 1, "the retry's attempt still counts")
    }

    @Test("a job handed back or reaped while its member's run is delayed joins that run")
    func releaseWhileDelayed() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([11], priority: .repair, on: QueueConnection(redis))
        let held = try #require(try queue.fetch(worker: "w1", on: QueueConnection(redis)))
        try queue.enqueue([11], priority: .interactive, on: QueueConnection(redis))
        let postponed = try #require(try queue.fetch(worker: "w2", on: QueueConnection(redis)))
        _ = try slowQueue.postpone(postponed, worker: "w2", random: 0, on: QueueConnection(redis))
        #expect(try queue.handBack(worker: "w1", on: QueueConnection(redis)) == 1)
        let stats = try queue.stats(on: QueueConnection(redis))
        #expect(stats.waiting.values.reduce(0, +) == 0 && stats.delayed == 1 && stats.processing == 0)
        #expect(try delayedRuns(redis)["11"]?.job == "0:\(held.enqueuedAt)")
        try makeDue(redis)
        #expect(try fetchAll("w3", redis).map(\.member) == [11])
    }

    @Test("delayed entries written before runs were kept one per member are still taken when due")
    func legacyDelayedEntries() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        _ = try redis.send(["ZADD", "kq:delayed", "0", "13|1|12345"])
        _ = try redis.send(["ZADD", "kq:delayed", "0", "14|2|12346"])
        try queue.enqueue([14], priority: .interactive, on: QueueConnection(redis))
        let jobs = try fetchAll("w1", redis)
        #expect(jobs.map(\.member) == [14, 13])
        #expect(jobs.map(\.priority) == [.interactive, .repair])
        #expect(jobs.map(\.enqueuedAt) == [12346, 12345], "the earlier enqueue time of the merged run")
        #expect(try queue.stats(on: QueueConnection(redis)).delayed == 0)
    }

    func serverMilliseconds(_ redis: RedisConnection) throws -> Int64 {
        let time = try #require(try redis.send(["TIME"]).array?.compactMap { $0.string.flatMap(Int64.init) })
        return time[0] * 1000 + time[1] / 1000
    }

    @Test("a job that can never succeed is buried at once with its reason")
    func bury() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([25], priority: .interactive, on: QueueConnection(redis))
        let job = try #require(try queue.fetch(worker: "w1", on: QueueConnection(redis)))
        #expect(try queue.bury(job, worker: "w1", reason: "stored member breaks the rules: age", on: QueueConnection(redis)) == .dead(attempts: 1))
        #expect(try queue.deadJobs(on: QueueConnection(redis)).map(\.reason) == ["stored member breaks the rules: age"])
        #expect(try queue.fetch(worker: "w1", on: QueueConnection(redis)) == nil)
        #expect(try queue.stats(on: QueueConnection(redis)).processing == 0)
    }

    @Test("dead jobs deleted by id or all at once leave the dead-letter list; a run of the same member that waits is kept")
    func deleteDead() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([31, 32, 33], priority: .repair, on: QueueConnection(redis))
        for job in try fetchAll("w1", redis) {
            #expect(try queue.bury(job, worker: "w1", reason: "stored member breaks the rules", on: QueueConnection(redis)) == .dead(attempts: 1))
        }
        try queue.enqueue([32], priority: .interactive, on: QueueConnection(redis))  // queued again while dead
        #expect(try queue.deleteDead([31, 99], on: QueueConnection(redis)) == 1, "99 was never dead")
        #expect(try queue.deadJobs(on: QueueConnection(redis)).map(\.member) == [32, 33])
        #expect(try queue.deleteDead(nil, on: QueueConnection(redis)) == 2)
        #expect(try queue.deadJobs(on: QueueConnection(redis)).isEmpty && queue.stats(on: QueueConnection(redis)).dead == 0)
        #expect(try queue.deleteDead(nil, on: QueueConnection(redis)) == 0)
        #expect(try queue.retryDead(nil, on: QueueConnection(redis)) == 0, "nothing deleted comes back")
        #expect(try fetchAll("w2", redis).map(\.member) == [32], "the waiting run survives the deletion")
    }

    @Test("the jobs of a worker that stopped heartbeating come back within the timeout, each counted as an attempt")
    func reaper() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([31, 32], priority: .interactive, on: QueueConnection(redis))
        let taken = try [queue.fetch(worker: "crashed", on: QueueConnection(redis)), queue.fetch(worker: "crashed", on: QueueConnection(redis))]
        #expect(taken.compactMap { $0?.member } == [31, 32])
        // A live worker is not reaped.
        try queue.heartbeat(worker: "alive", on: QueueConnection(redis))
        var reaped = (workers: 0, returned: 0, dead: 0)
        let start = ContinuousClock.now
        try poll(until: "the silent worker to be reaped", timeout: .seconds(5)) {
            try queue.heartbeat(worker: "alive", on: QueueConnection(redis))
            reaped = try queue.reap(timeout: .milliseconds(300), on: QueueConnection(redis))
            return reaped.workers > 0
        }
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(reaped.workers == 1 && reaped.returned == 2)
        let back = try fetchAll("w2", redis)
        #expect(back.map(\.member) == [31, 32])
        #expect(back.allSatisfy { $0.attempts == 1 })
        #expect(try queue.stats(on: QueueConnection(redis)).workers == 2)  // "alive" and "w2"
    }

    @Test("a job that kills its worker every time ends in the dead-letter list")
    func poisonJob() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([41], priority: .interactive, on: QueueConnection(redis))
        for round in 1...3 {
            let worker = "victim-\(round)"
            #expect(try queue.fetch(worker: worker, on: QueueConnection(redis))?.member == 41)
            try poll(until: "\(worker) to be reaped", timeout: .seconds(5)) {
                try queue.reap(timeout: .milliseconds(100), on: QueueConnection(redis)).workers > 0
            }
        }
        #expect(try queue.fetch(worker: "w", on: QueueConnection(redis)) == nil)
        let dead = try queue.deadJobs(on: QueueConnection(redis))
        #expect(dead.map(\.member) == [41])
        #expect(dead.first?.reason == "worker stopped heartbeating while processing it")
    }

    @Test("a graceful stop hands jobs back to the front without counting an attempt")
    func handBack() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        try queue.enqueue([51, 52, 53], priority: .backfill, on: QueueConnection(redis))
        let held = try [queue.fetch(worker: "w1", on: QueueConnection(redis)), queue.fetch(worker: "w1", on: QueueConnection(redis))].compactMap { $0 }
        #expect(held.map(\.member) == [51, 52])
        #expect(try queue.handBack(worker: "w1", on: QueueConnection(redis)) == 2)
        let jobs = try fetchAll("w2", redis)
        #expect(Set(jobs.prefix(2).map(\.member)) == [51, 52])
        #expect(jobs.last?.member == 53)
        #expect(jobs.allSatisfy { $0.attempts == 0 })
    }

    @Test("concurrent workers take every job exactly once")
    func concurrentFetch() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        let members = (1...3000).map { UInt32($0) }
        try queue.enqueue(members, priority: .backfill, on: QueueConnection(redis))
        let queue = self.queue
        let threads = (0..<4).map { n in
            BackgroundThread("worker \(n)") { () -> Result<[UInt32], any Error> in
                Result {
                    let connection = try server.connect()
                    var taken: [UInt32] = []
                    while let job = try queue.fetch(worker: "w\(n)", on: QueueConnection(connection)) {
                        taken.append(job.member)
                        try queue.complete(job, worker: "w\(n)", on: QueueConnection(connection))
                    }
                    return taken
                }
            }
        }
        let taken = try threads.flatMap { try $0.result().get() }
        #expect(taken.count == 3000)
        #expect(Set(taken) == Set(members))
        let stats = try queue.stats(on: QueueConnection(redis))
        #expect(stats.processing == 0 && stats.waiting.values.reduce(0, +) == 0)
    }

    @Test("an idle worker waiting for work wakes when something is queued")
    func wakeUp() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        let queue = self.queue
        let ready = DispatchSemaphore(value: 0)
        let waiter = BackgroundThread("waiter") { () -> Result<Bool, any Error> in
            Result {
                let connection = try server.connect(readTimeout: .seconds(30))
                ready.signal()
                return try queue.waitForWork(timeout: .seconds(20), on: QueueConnection(connection))
            }
        }
        ready.wait()
        // The waiter may not be blocked in BLPOP yet; the signal list keeps the token either way.
        try queue.enqueue([61], priority: .interactive, on: QueueConnection(redis))
        let start = ContinuousClock.now
        #expect(try waiter.result(timeout: .seconds(15)).get())
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(try queue.fetch(worker: "w", on: QueueConnection(redis))?.member == 61)
    }

    @Test("the default retry: 1 s doubling to 60 s, up to 25% more")
    func defaultRetryPolicy() {
        let policy = JobRetryPolicy.default
        #expect((1...8).map { policy.delay(afterFailures: $0, random: 0) } == [1, 2, 4, 8, 16, 32, 60, 60].map { Duration.seconds($0) })
        #expect(policy.delay(afterFailures: 1, random: 1) == .milliseconds(1250))
        #expect(policy.delay(afterFailures: 7, random: 1) == .seconds(75))
        #expect(policy.maxAttempts == 5)
    }

    @Test("retry delays double, cap and add bounded jitter")
    func retryPolicy() {
        let policy = JobRetryPolicy(maxAttempts: 5, baseDelay: .seconds(1), maxDelay: .seconds(10), jitter: 0.5)
        #expect(policy.delay(afterFailures: 1, random: 0) == .seconds(1))
        #expect(policy.delay(afterFailures: 2, random: 0) == .seconds(2))
        #expect(policy.delay(afterFailures: 4, random: 0) == .seconds(8))
        #expect(policy.delay(afterFailures: 5, random: 0) == .seconds(10))
        #expect(policy.delay(afterFailures: 60, random: 0) == .seconds(10))
        #expect(policy.delay(afterFailures: 1, random: 0.999) <= .milliseconds(1500))
        #expect(policy.delay(afterFailures: 1, random: 0.5) == .milliseconds(1250))
    }
}
