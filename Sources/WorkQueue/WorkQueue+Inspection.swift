import RedisClient
import Scoring

/// What the operator's dashboard shows of the queue: the next waiting jobs,
/// the jobs in flight with their workers, the workers' heartbeats, and the
/// per-minute counters the workers publish.
extension WorkQueue {
    /// A waiting job as the dashboard lists it.
    package struct WaitingJob: Sendable, Hashable {
        package var member: MemberID
        package var priority: JobPriority
        /// Unix milliseconds.
        package var enqueuedAt: Int64
    }

    /// A worker that heartbeats, and what it holds.
    package struct WorkerState: Sendable, Hashable {
        package var worker: String
        /// Unix milliseconds (the queue server's clock).
        package var lastHeartbeat: Int64
        package var jobs: [Job]
    }

    /// The next `limit` jobs of `priority`, in the order workers take them.
    /// List entries that no longer wait (promoted, or taken) are skipped,
    /// so a page may hold fewer than `limit` although more wait.
    package func nextWaiting(_ priority: JobPriority, limit: Int, on redis: QueueConnection) throws(QueueError) -> [WaitingJob] {
        let keys = self.keys(on: redis)
        guard limit > 0 else { return [] }
        // Workers take from the right (RPOP): the next job is the last entry.
        let ids = (try send(["LRANGE", keys.ready(priority), String(-limit), "-1"], on: redis).array ?? [])
            .compactMap { $0.string.flatMap(MemberID.init) }.reversed()
        guard !ids.isEmpty else { return [] }
        var command = RedisCommand("HMGET")
        command.append(keys.waiting)
        for id in ids { command.append(String(id)) }
        let states = try send(command, on: redis).array ?? []
        var jobs: [WaitingJob] = []
        for (id, state) in zip(ids, states) {
            // `priority:enqueuedAtMs`: this entry is the member's waiting run only at this priority.
            guard let text = state.string, let colon = text.firstIndex(of: ":"),
                Int(text[..<colon]) == priority.rawValue, let at = Int64(text[text.index(after: colon)...])
            else { continue }
            jobs.append(WaitingJob(member: id, priority: priority, enqueuedAt: at))
        }
        return jobs
    }

    /// Every worker with a heartbeat, most recent first, with the jobs it holds.
    package func workerStates(on redis: QueueConnection) throws(QueueError) -> [WorkerState] {
        let keys = self.keys(on: redis)
        let flat = try send(["ZRANGE", keys.workers, "0", "-1", "WITHSCORES"], on: redis).array ?? []
        var states: [WorkerState] = []
        var index = 0
        while index + 1 < flat.count {
            defer { index += 2 }
            guard let worker = flat[index].string, let score = flat[index + 1].string.flatMap(Double.init) else { continue }
            let entries = try send(["LRANGE", keys.processing(worker), "0", "-1"], on: redis).array ?? []
            states.append(WorkerState(worker: worker, lastHeartbeat: Int64(score), jobs: entries.compactMap { $0.string.flatMap(Job.init(entry:)) }))
        }
        return states.sorted { ($0.lastHeartbeat, $0.worker) > ($1.lastHeartbeat, $1.worker) }
    }

    /// The queue server's clock, Unix milliseconds.
    package func serverTime(on redis: QueueConnection) throws(QueueError) -> Int64 {
        let keys = self.keys(on: redis)
        return try run(QueueScripts.serverTime, keys: [keys.workers], arguments: [], on: redis).int.map(Int64.init) ?? 0
    }

    // MARK: Per-minute counters

    /// How long a minute's counters are kept (two hours).
    package static let throughputRetentionSeconds = 7200

    /// Adds `counts` to the counters of each minute (Unix minutes), which
    /// expire after ``throughputRetentionSeconds``: the workers publish
    /// what they did, every process adds to the same minutes.
    ///
    /// Exactly once: `publisher` (a process's id) numbers its batches, and
    /// one script adds a batch and records its number, or does nothing for
    /// a number already recorded. A batch whose reply was lost (the
    /// connection dropped after the server ran it) is sent again under the
    /// same number and not counted twice; a batch that failed is counted
    /// once when it is sent again. Answers whether this call added it.
    @discardableResult
    package func addThroughput(
        _ counts: [Int64: [String: Int]], publisher: String, sequence: UInt64, on redis: QueueConnection
    ) throws(QueueError) -> Bool {
        let keys = self.keys(on: redis)
        var scriptKeys = [keys.throughputPublishers, keys.throughputPublishersSeen]
        var arguments = [publisher, String(sequence), String(Self.throughputRetentionSeconds)]
        for (minute, fields) in counts.sorted(by: { $0.key < $1.key }) {
            let nonzero = fields.filter { $0.value != 0 }.sorted { $0.key < $1.key }
            guard !nonzero.isEmpty else { continue }
            scriptKeys.append(keys.throughput(minute: minute))
            arguments.append(String(nonzero.count))
            for (field, count) in nonzero { arguments += [field, String(count)] }
        }
        return try run(QueueScripts.addThroughput, keys: scriptKeys, arguments: arguments, on: redis).int == 1
    }

    /// The counters of each minute in `minutes` (Unix minutes); a minute
    /// nobody published is empty.
    package func throughput(_ minutes: ClosedRange<Int64>, on redis: QueueConnection) throws(QueueError) -> [Int64: [String: Int]] {
        let keys = self.keys(on: redis)
        let list = Array(minutes)
        let replies: [Result<RedisValue, RedisError>]
        do {
            replies = try redis.pipeline(list.map { ["HGETALL", keys.throughput(minute: $0)] }, key: keys.signal)
        } catch { throw .redis(error) }
        var result: [Int64: [String: Int]] = [:]
        for (minute, reply) in zip(list, replies) {
            guard case .success(let value) = reply, let flat = value.array else {
                if case .failure(let error) = reply { throw .redis(error) }
                continue
            }
            var fields: [String: Int] = [:]
            var index = 0
            while index + 1 < flat.count {
                if let name = flat[index].string, let count = flat[index + 1].string.flatMap(Int.init) { fields[name] = count }
                index += 2
            }
            result[minute] = fields
        }
        return result
    }
}
