import KindredSupport
import RedisClient
import Scoring

/// The durable work queue of member ids, on one Redis instance (a shard or a
/// dedicated one). Stateless: every operation runs on a connection the caller
/// owns (one thread at a time), and every step that moves a job is one Lua
/// script, so a worker killed at any instant leaves each job in exactly one
/// place: waiting, delayed, held in a processing list, or dead.
///
/// - Three priorities served strictly in order (``JobPriority``).
/// - A member is pending (waiting, or delayed for a retry) at most once: a
///   member queued again while pending is not queued twice (queued more
///   urgently, the pending run is promoted; a delayed one keeps its time),
///   and a retry or postponement of a member who is pending merges into that
///   run. A member whose job is in flight may be queued once more (the job
///   may have read MySQL before the change).
/// - Reliable fetch: ``fetch(worker:on:)`` moves the job into the worker's
///   processing list in the same script that takes it; workers heartbeat,
///   and ``reap(timeout:on:)`` returns the jobs of a worker that went silent.
/// - Failures retry with backoff (``JobRetryPolicy``) and after the last
///   attempt land in the dead-letter list with the reason.
///
/// MySQL's generation bookkeeping stays the truth: a repair sweep re-enqueues
/// every member whose set is missing or stale, so a queue that restarts empty
/// loses nothing.
package struct WorkQueue: Sendable {
    package let keys: QueueKeys
    package var retry: JobRetryPolicy

    package init(keys: QueueKeys = QueueKeys(), retry: JobRetryPolicy = .default) {
        self.keys = keys
        self.retry = retry
    }

    /// Queues `members` at `priority`, in batches of 1000 per script. A
    /// member already pending (waiting or delayed) is not queued again; see
    /// ``EnqueueResult``.
    @discardableResult
    package func enqueue(_ members: some Collection<MemberID>, priority: JobPriority, on redis: QueueConnection) throws(QueueError)
        -> EnqueueResult
    {
        let keys = self.keys(on: redis)
        var result = EnqueueResult()
        var batch: [String] = []
        batch.reserveCapacity(1001)
        func flush() throws(QueueError) {
            guard !batch.isEmpty else { return }
            let reply = try run(QueueScripts.enqueue, keys: keys.placement, arguments: [String(priority.rawValue)] + batch, on: redis)
            guard let counts = reply.array?.compactMap(\.int), counts.count == 4 else { throw QueueError.unexpected(reply) }
            result.enqueued += counts[0]
            result.promoted += counts[1]
            result.alreadyWaiting += counts[2]
            result.alreadyDelayed += counts[3]
            batch.removeAll(keepingCapacity: true)
        }
        for member in members {
            precondition(member > 0, "member ids are positive")
            batch.append(String(member))
            if batch.count == 1000 { try flush() }
        }
        try flush()
        return result
    }

    /// Takes the most urgent waiting job into `worker`'s processing list (and
    /// records a heartbeat); nil when nothing waits. Due delayed runs are
    /// moved back to waiting first.
    package func fetch(worker: String, on redis: QueueConnection) throws(QueueError) -> Job? {
        let keys = self.keys(on: redis)
        let reply = try run(
            QueueScripts.fetch, keys: keys.placement + [keys.processing(worker), keys.attempts, keys.workers],
            arguments: [worker], on: redis)
        if reply.isNull { return nil }
        guard let entry = reply.string, let job = Job(entry: entry) else { throw QueueError.unexpected(reply) }
        return job
    }

    /// Blocks up to `timeout` for a new-job signal, so an idle worker wakes as
    /// soon as something is queued. Returns true when signalled. The
    /// connection's read timeout must be longer than `timeout`.
    package func waitForWork(timeout: Duration, on redis: QueueConnection) throws(QueueError) -> Bool {
        let keys = self.keys(on: redis)
        var command = RedisCommand("BLPOP")
        command.append(keys.signal)
        let seconds = timeout.inSeconds
        command.append(String(max(seconds, 0.01)))
        let reply: RedisValue
        do { reply = try redis.send(command, key: keys.signal) } catch { throw .redis(error) }
        if reply.errorMessage != nil { throw QueueError.unexpected(reply) }
        return !reply.isNull
    }

    /// The job is done: drop it from the processing list and forget its
    /// failures. False when the worker no longer held it (it was reaped while
    /// the worker ran: harmless, jobs are idempotent).
    @discardableResult
    package func complete(_ job: Job, worker: String, on redis: QueueConnection) throws(QueueError) -> Bool {
        let keys = self.keys(on: redis)
        let reply = try run(
            QueueScripts.complete, keys: [keys.processing(worker), keys.attempts, keys.postponed],
            arguments: [job.entry, String(job.member)], on: redis)
        return reply.int == 1
    }

    /// The job failed with `reason` (no member data): it comes back after a
    /// backoff, or goes to the dead-letter list after its last attempt. When
    /// the member is pending already, the retry merges into that run (see
    /// ``postpone(_:worker:random:on:)``).
    package func fail(
        _ job: Job, worker: String, reason: String, random: Double = Double.random(in: 0..<1), on redis: QueueConnection
    ) throws(QueueError) -> FailureOutcome {
        let keys = self.keys(on: redis)
        let delay = retry.delay(afterFailures: job.attempts + 1, random: random)
        let milliseconds = delay.wholeMilliseconds
        let reply = try run(
            QueueScripts.fail, keys: keys.placement + [keys.processing(worker), keys.attempts, keys.dead, keys.postponed],
            arguments: [
                job.entry, String(job.member), String(job.priority.rawValue), String(job.enqueuedAt),
                String(retry.maxAttempts), String(milliseconds), String(reason.prefix(500)),
            ], on: redis)
        guard let parts = reply.array, let kind = parts.first?.string else { throw QueueError.unexpected(reply) }
        switch kind {
        case "retry":
            guard parts.count == 3, let attempt = parts[1].int, let at = parts[2].int else { throw QueueError.unexpected(reply) }
            return .retry(at: Int64(at), attempt: attempt)
        case "dead":
            guard parts.count == 2, let attempts = parts[1].int else { throw QueueError.unexpected(reply) }
            return .dead(attempts: attempts)
        default:
            return .notHeld
        }
    }

    /// The job could not run because something it needs is down (its
    /// member's shard): it comes back later without using up an attempt, so
    /// an outage of any length fills no dead-letter list. The delay follows
    /// the retry policy's backoff over the postponements in a row.
    ///
    /// A member keeps at most one delayed run: postponed while delayed
    /// already, the two become one with the earlier time, the more urgent
    /// priority and the earlier enqueue time. Postponed while waiting (queued
    /// again while this job ran), nothing is delayed: the waiting run comes
    /// sooner and covers this one (the outcome's time is then now).
    ///
    /// `baseDelay` and `maxDelay` override the retry policy's (a short wait
    /// behind another job of the same member, rather than a shard outage's).
    package func postpone(
        _ job: Job, worker: String, baseDelay: Duration? = nil, maxDelay: Duration? = nil,
        random: Double = Double.random(in: 0..<1), on redis: QueueConnection
    ) throws(QueueError) -> PostponeOutcome {
        let keys = self.keys(on: redis)
        let jitter = 1 + retry.jitter * min(max(random, 0), 1)
        let base = (baseDelay ?? retry.baseDelay).wholeMilliseconds
        let most = (maxDelay ?? retry.maxDelay).wholeMilliseconds
        let reply = try run(
            QueueScripts.postpone, keys: keys.placement + [keys.processing(worker), keys.postponed],
            arguments: [
                job.entry, String(job.member), String(job.priority.rawValue), String(job.enqueuedAt),
                String(base), String(most), String(jitter),
            ], on: redis)
        guard let parts = reply.array, let kind = parts.first?.string else { throw QueueError.unexpected(reply) }
        guard kind == "postponed" else { return .notHeld }
        guard parts.count == 3, let times = parts[1].int, let at = parts[2].int else { throw QueueError.unexpected(reply) }
        return .postponed(at: Int64(at), times: times)
    }

    /// The job can never succeed (its member's stored data breaks the
    /// engine's rules): it goes to the dead-letter list at once with `reason`,
    /// without using up retries.
    package func bury(_ job: Job, worker: String, reason: String, on redis: QueueConnection) throws(QueueError) -> FailureOutcome {
        let keys = self.keys(on: redis)
        let reply = try run(
            QueueScripts.fail, keys: keys.placement + [keys.processing(worker), keys.attempts, keys.dead, keys.postponed],
            arguments: [
                job.entry, String(job.member), String(job.priority.rawValue), String(job.enqueuedAt),
                "1", "0", String(reason.prefix(500)),
            ], on: redis)
        guard let parts = reply.array, let kind = parts.first?.string else { throw QueueError.unexpected(reply) }
        if kind == "dead", parts.count == 2, let attempts = parts[1].int { return .dead(attempts: attempts) }
        return .notHeld
    }

    /// Whether the queue's Redis (on a cluster: the master serving the
    /// queue's slot) answers `PING`.
    package func ping(on redis: QueueConnection) throws(QueueError) {
        _ = try send(["PING"], on: redis)
    }

    /// Records that `worker` is alive (server clock).
    package func heartbeat(worker: String, on redis: QueueConnection) throws(QueueError) {
        let keys = self.keys(on: redis)
        _ = try run(QueueScripts.heartbeat, keys: [keys.workers], arguments: [worker], on: redis)
    }

    /// Graceful stop: puts every job `worker` holds back at the front of its
    /// priority, without counting an attempt, and forgets the worker.
    @discardableResult
    package func handBack(worker: String, on redis: QueueConnection) throws(QueueError) -> Int {
        try release(worker: worker, countAttempt: false, on: redis).returned
    }

    /// Returns the jobs of every worker silent for longer than `timeout`.
    /// Each returned job counts as a failed attempt (a job that kills its
    /// worker must not loop forever). Several processes may reap at once: a
    /// worker's list is emptied by one script, so each job moves once.
    package func reap(timeout: Duration, on redis: QueueConnection) throws(QueueError) -> (workers: Int, returned: Int, dead: Int) {
        let keys = self.keys(on: redis)
        let milliseconds = timeout.wholeMilliseconds
        let reply = try run(QueueScripts.silentWorkers, keys: [keys.workers], arguments: [String(milliseconds)], on: redis)
        guard let silent = reply.array?.compactMap(\.string) else { throw QueueError.unexpected(reply) }
        var returned = 0
        var dead = 0
        for worker in silent {
            let counts = try release(worker: worker, countAttempt: true, on: redis)
            returned += counts.returned
            dead += counts.dead
        }
        return (silent.count, returned, dead)
    }

    private func release(worker: String, countAttempt: Bool, on redis: QueueConnection) throws(QueueError) -> (returned: Int, dead: Int) {
        let keys = self.keys(on: redis)
        let reply = try run(
            QueueScripts.release,
            keys: keys.placement + [keys.processing(worker), keys.workers, keys.attempts, keys.dead, keys.postponed],
            arguments: [worker, countAttempt ? "1" : "0", String(retry.maxAttempts)], on: redis)
        guard let counts = reply.array?.compactMap(\.int), counts.count == 2 else { throw QueueError.unexpected(reply) }
        return (counts[0], counts[1])
    }

    /// The dead-letter list, oldest death first.
    package func deadJobs(on redis: QueueConnection) throws(QueueError) -> [DeadJob] {
        let keys = self.keys(on: redis)
        let reply = try send(["HGETALL", keys.dead], on: redis)
        guard let flat = reply.array else { throw QueueError.unexpected(reply) }
        var jobs: [DeadJob] = []
        var i = 0
        while i + 1 < flat.count {
            defer { i += 2 }
            guard let id = flat[i].string.flatMap(MemberID.init), let value = flat[i + 1].string else { continue }
            let parts = value.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count == 4, let p = Int(parts[0]), let priority = JobPriority(rawValue: p),
                let attempts = Int(parts[1]), let at = Int64(parts[2])
            else { continue }
            jobs.append(DeadJob(member: id, priority: priority, attempts: attempts, diedAt: at, reason: String(parts[3])))
        }
        return jobs.sorted { ($0.diedAt, $0.member) < ($1.diedAt, $1.member) }
    }

    /// Re-drives dead jobs (all of them when `members` is nil) at their
    /// priority, with a fresh attempt count. Returns how many moved.
    @discardableResult
    package func retryDead(_ members: [MemberID]?, on redis: QueueConnection) throws(QueueError) -> Int {
        let keys = self.keys(on: redis)
        let ids: [MemberID]
        if let members {
            ids = members
        } else {
            ids = try deadJobs(on: redis).map(\.member)
        }
        var moved = 0
        for start in stride(from: 0, to: ids.count, by: 1000) {
            let batch = ids[start..<min(ids.count, start + 1000)].map(String.init)
            let reply = try run(
                QueueScripts.redrive, keys: keys.placement + [keys.dead],
                arguments: batch, on: redis)
            moved += reply.int ?? 0
        }
        return moved
    }

    /// Deletes dead jobs (all of them when `members` is nil): they leave the
    /// dead-letter list and are not run again. A member who is also waiting,
    /// delayed or in flight keeps that run; MySQL's bookkeeping still lists
    /// a member whose set is missing or stale, so the repair sweep queues
    /// them again. Returns how many dead jobs were deleted.
    @discardableResult
    package func deleteDead(_ members: [MemberID]?, on redis: QueueConnection) throws(QueueError) -> Int {
        let keys = self.keys(on: redis)
        let ids: [MemberID]
        if let members { ids = members } else { ids = try deadJobs(on: redis).map(\.member) }
        var deleted = 0
        for start in stride(from: 0, to: ids.count, by: 1000) {
            var command = RedisCommand("HDEL")
            command.append(keys.dead)
            for id in ids[start..<min(ids.count, start + 1000)] { command.append(String(id)) }
            deleted += try send(command, on: redis).int ?? 0
        }
        return deleted
    }

    /// Depth per priority, delayed, processing (and the oldest in-flight
    /// job's age), dead letters, workers.
    package func stats(on redis: QueueConnection) throws(QueueError) -> QueueStats {
        let keys = self.keys(on: redis)
        var stats = QueueStats()
        let depth = try send(["HGETALL", keys.depth], on: redis).array ?? []
        var i = 0
        while i + 1 < depth.count {
            if let p = depth[i].string.flatMap(Int.init), let priority = JobPriority(rawValue: p),
                let n = depth[i + 1].string.flatMap(Int.init)
            {
                stats.waiting[priority] = n
            }
            i += 2
        }
        for priority in JobPriority.allCases where stats.waiting[priority] == nil { stats.waiting[priority] = 0 }
        stats.delayed = try send(["ZCARD", keys.delayed], on: redis).int ?? 0
        stats.dead = try send(["HLEN", keys.dead], on: redis).int ?? 0
        let workers = try send(["ZRANGE", keys.workers, "0", "-1"], on: redis).array?.compactMap(\.string) ?? []
        stats.workers = workers.count
        let now = try run(QueueScripts.serverTime, keys: [keys.workers], arguments: [], on: redis).int.map(Int64.init) ?? 0
        for worker in workers {
            stats.processing += try send(["LLEN", keys.processing(worker)], on: redis).int ?? 0
            if let oldest = try send(["LINDEX", keys.processing(worker), "-1"], on: redis).string.flatMap(Job.init(entry:)) {
                stats.oldestProcessingAge = max(stats.oldestProcessingAge, now - oldest.startedAt)
            }
        }
        return stats
    }

    // MARK: plumbing

    func run(_ script: RedisScript, keys: [String], arguments: [String], on redis: QueueConnection) throws(QueueError)
        -> RedisValue
    {
        let reply: RedisValue
        do { reply = try redis.evaluate(script, keys: keys, arguments: arguments) } catch { throw .redis(error) }
        if let message = reply.errorMessage { throw QueueError.server(message) }
        return reply
    }

    func send(_ command: RedisCommand, on redis: QueueConnection) throws(QueueError) -> RedisValue {
        let reply: RedisValue
        do { reply = try redis.send(command, key: keys(on: redis).signal) } catch { throw .redis(error) }
        if let message = reply.errorMessage { throw QueueError.server(message) }
        return reply
    }

    /// The queue's keys on `redis`: on a Redis Cluster they carry the
    /// namespace as one hash tag (``QueueKeys/onCluster``).
    func keys(on redis: QueueConnection) -> QueueKeys { redis.isCluster ? keys.onCluster : keys }
}

/// A queue operation that failed: the connection (retry after reconnecting),
/// an error reply, or a reply the queue did not expect.
package enum QueueError: Error, Sendable, CustomStringConvertible {
    case redis(RedisError)
    case server(String)
    case unexpectedReply(String)

    static func unexpected(_ reply: RedisValue) -> QueueError {
        .unexpectedReply(String(describing: reply).prefix(200).description)
    }

    /// ``WorkQueue/addThroughput(_:publisher:sequence:on:)`` refused its
    /// batch for good (a counter key holds something else): sending it
    /// again cannot help.
    package var isThroughputRefusal: Bool {
        guard case .server(let message) = self else { return false }
        return message.hasPrefix("WRONGTYPE throughput") || message.hasPrefix("ERR throughput")
    }

    /// True when the connection is gone and the operation may be retried on a new one.
    package var isConnectionBroken: Bool {
        if case .redis(let error) = self { return error.isConnectionBroken }
        return false
    }

    package var description: String {
        switch self {
        case .redis(let error): "queue: \(error)"
        case .server(let message): "queue: server error: \(message)"
        case .unexpectedReply(let reply): "queue: unexpected reply \(reply)"
        }
    }
}
