import Foundation
import KindredCore
import KindredSupport
import MemberStore
import ScoreStore
import Scoring
import Synchronization
import WorkQueue

/// Requests and server errors per minute in this web process, for the last
/// two hours (the dashboard's chart of web traffic).
final class WebThroughput: Sendable {
    private let minutes = Mutex<[Int64: (requests: Int, errors: Int)]>([:])

    func record(status: Int, now: Date = Date()) {
        let minute = ThroughputRecorder.minute(of: now)
        minutes.withLock { minutes in
            if minutes[minute] == nil { minutes = minutes.filter { minute - $0.key < 120 } }
            minutes[minute, default: (0, 0)].requests += 1
            if status >= 500 { minutes[minute, default: (0, 0)].errors += 1 }
        }
    }

    func minute(_ minute: Int64) -> (requests: Int, errors: Int) { minutes.withLock { minutes in minutes[minute] ?? (0, 0) } }
}

/// What the dashboard shows, gathered on an I/O thread. Each part is read
/// on its own: a dependency that is down leaves its part empty and adds a
/// line to ``problems``, the rest still shows.
struct AdminOverview: Sendable {
    var members: MemberCounts?
    var sets: GenerationCounts?
    var evicted: Int?
    var queue: QueueStats?
    var workers: [WorkQueue.WorkerState] = []
    /// The queue server's clock, Unix milliseconds (heartbeat ages).
    var queueNow: Int64 = 0
    var shards: [ShardAdministration.Listing]?
    var breakers: [UInt32: String] = [:]
    var snapshotMembers = 0
    var snapshotAgeSeconds = 0.0
    /// The last hour of the workers' counters, by Unix minute.
    var throughput: [Int64: [String: Int]] = [:]
    /// The last hour of this web process's requests and 5xx answers.
    var web: [Int64: (requests: Int, errors: Int)] = [:]
    var currentMinute: Int64 = 0
    var problems: [String] = []
}

struct AdminQueuePage: Sendable {
    var stats: QueueStats?
    var waiting: [JobPriority: [WorkQueue.WaitingJob]] = [:]
    var workers: [WorkQueue.WorkerState] = []
    var dead: [DeadJob] = []
    var queueNow: Int64 = 0
    var problems: [String] = []
}

struct AdminRun: Sendable {
    var record: BackfillRunRecord
    var started: Int64
    var updated: Int64
    var finished: Int64?
    var failures: [(reason: String, count: Int)]
}

/// One member as the dashboard shows them: never their answers.
struct AdminMember: Sendable {
    var id: MemberID
    var member: Member?
    var deleted: Bool
    var shard: UInt32?
    var generation: Generation?
    var meta: ScoreStore.SetMeta?
    var setRead: Bool
    var evictedAt: Int64?
    var answersVersion: UInt64?
    var problems: [String] = []

    /// `current`, `stale`, `missing`, `evicted`, or `deleted`.
    var setState: String {
        if deleted { return "deleted" }
        if generation == nil { return evictedAt != nil ? "evicted" : "missing" }
        if setRead && meta == nil { return "missing" }
        if let generation, let answersVersion, generation.answersVersion != answersVersion { return "stale" }
        return "current"
    }
}

extension WebBackend {
    func adminOverview() async throws(APIError) -> AdminOverview {
        let webMinutes = webThroughput
        return try await onIO { [self] thread throws(APIError) in
            var overview = AdminOverview()
            let minute = ThroughputRecorder.minute(of: Date())
            overview.currentMinute = minute
            for m in (minute - 59)...minute { overview.web[m] = webMinutes.minute(m) }
            overview.snapshotMembers = core.population.read { $0.count }
            overview.snapshotAgeSeconds = Double(core.population.age.components.seconds)
            for (shard, health) in core.scores.manager.health() { overview.breakers[shard] = "\(health.breaker)" }
            do {
                try thread.database { session in
                    overview.members = try session.members.counts()
                    overview.sets = try session.generations.counts()
                    overview.evicted = try session.evictions.evictedCount()
                    overview.shards = try ShardAdministration(session: session).list()
                }
            } catch {
                overview.problems.append("MySQL: \(error)")
            }
            do {
                try thread.queueCall { redis in
                    overview.queue = try queue.stats(on: redis)
                    overview.workers = try queue.workerStates(on: redis)
                    overview.queueNow = try queue.serverTime(on: redis)
                    overview.throughput = try queue.throughput((minute - 59)...minute, on: redis)
                }
            } catch {
                overview.problems.append("the queue: \(error)")
            }
            return overview
        }
    }

    func adminQueue(pageSize: Int = 50) async throws(APIError) -> AdminQueuePage {
        try await onIO { [self] thread throws(APIError) in
            var page = AdminQueuePage()
            do {
                try thread.queueCall { redis in
                    page.stats = try queue.stats(on: redis)
                    for priority in JobPriority.allCases {
                        page.waiting[priority] = try queue.nextWaiting(priority, limit: pageSize, on: redis)
                    }
                    page.workers = try queue.workerStates(on: redis)
                    page.dead = try queue.deadJobs(on: redis)
                    page.queueNow = try queue.serverTime(on: redis)
                }
            } catch {
                page.problems.append("the queue: \(error)")
            }
            return page
        }
    }

    func adminRuns() async throws(APIError) -> ([AdminRun], [String]) {
        try await onIO { thread throws(APIError) in
            do {
                let runs = try thread.database { session -> [AdminRun] in
                    let store = session.runs
                    let records = try store.recentRuns(limit: 20)
                    let times = try store.times(of: records.map(\.id))
                    return try records.map { record in
                        let time = times[record.id]
                        return AdminRun(
                            record: record, started: time?.started ?? 0, updated: time?.updated ?? 0, finished: time?.finished ?? nil,
                            failures: record.failed > 0 ? try store.failureReasons(of: record.id) : [])
                    }
                }
                return (runs, [])
            } catch {
                return ([], ["MySQL: \(error)"])
            }
        }
    }

    func adminShards() async throws(APIError) -> ([ShardAdministration.Listing], [String]) {
        try await onIO { thread throws(APIError) in
            do {
                return (try thread.database { try ShardAdministration(session: $0).list() }, [])
            } catch {
                return ([], ["MySQL: \(error)"])
            }
        }
    }

    func adminMember(_ id: MemberID) async throws(APIError) -> AdminMember {
        try await onIO { [self] thread throws(APIError) in
            var found = AdminMember(id: id, member: nil, deleted: false, shard: nil, generation: nil, meta: nil, setRead: false, evictedAt: nil, answersVersion: nil)
            do {
                try thread.database { session in
                    let repository = session.members
                    if let member = try repository.member(id) {
                        found.member = member
                        found.answersVersion = AnswersVersion.of(member, survey: core.survey)
                    } else {
                        found.deleted = try repository.isDeleted(id)
                    }
                    found.generation = try session.generations.generation(of: id)
                    found.evictedAt = try session.evictions.eviction(of: id)?.evictedAt
                }
                found.shard = try core.directory.shard(of: id, in: thread.session.store)
            } catch {
                found.problems.append("MySQL: \(error)")
            }
            if let shard = found.generation?.shardID ?? found.shard {
                do {
                    found.meta = try core.scores.readMeta(id, shard: shard)
                    found.setRead = true
                } catch {
                    found.problems.append("shard \(shard): \(error)")
                }
            }
            return found
        }
    }

    /// Queues an interactive rebuild of `id`; false when the queue is unreachable.
    func adminRebuild(_ id: MemberID) async throws(APIError) -> Bool {
        try await onIO { thread throws(APIError) in thread.enqueue(id) }
    }

    /// Re-drives dead jobs (all when `members` is nil); how many moved.
    func adminRetryDead(_ members: [MemberID]?) async throws(APIError) -> Int {
        try await adminQueueCall { [queue] in try queue.retryDead(members, on: $0) }
    }

    /// Deletes dead jobs (all when `members` is nil); how many went.
    func adminDeleteDead(_ members: [MemberID]?) async throws(APIError) -> Int {
        try await adminQueueCall { [queue] in try queue.deleteDead(members, on: $0) }
    }

    /// One call on an I/O thread's queue connection; a failure answers 503.
    private func adminQueueCall<T: Sendable>(_ body: @escaping @Sendable (QueueConnection) throws -> T) async throws(APIError) -> T {
        try await onIO { [self] thread throws(APIError) in
            do {
                return try thread.queueCall(body)
            } catch {
                throw .unavailable("the queue is unavailable: \(error)", retryAfter: settings.retryAfterSeconds)
            }
        }
    }
}
