import CoreMetrics
import Foundation
import Logging
import MariaDBClient
import MemberStore
import RedisClient
import Scoring
import ScoreStore
import ServiceLifecycle
import WorkQueue

/// Per-thread connections for one background task: made on the task's own
/// thread on first use and kept from one run to the next.
///
/// A server that restarted (or a network path that broke) while a run was
/// idle leaves the kept socket dead, and a dead socket fails on its first
/// use. So each use survives that once:
/// - queue: when `body` fails and the kept connection is broken, whatever
///   error `body` threw (a `QueueError`, a `RedisError`, anything wrapping
///   them), the connection is replaced and `body` runs once more on the new
///   one. A new connection that breaks too is dropped and the error thrown:
///   the next run starts afresh. `body` may therefore run twice; every queue
///   step the tasks take (enqueue, heartbeat, reap, hand back, stats) is
///   harmless to repeat.
/// - MySQL: `withRetry` (MemberStore) reconnects and runs `body` again
///   within the same run when the connection was lost, for up to the
///   settings' `mysqlRetry` (then the run fails and the next one reconnects).
///
/// So a restart of the queue's Redis costs no run, where it used to cost
/// one: a whole interval for the repair sweep (5 minutes) and the set audit
/// (10); for the shard watcher, the repair of a shard noticed empty in that
/// run (see ``Maintenance/shardWatcher(_:)``).
final class TaskConnections: @unchecked Sendable {
    // @unchecked Sendable: used only from the one thread of its periodic
    // service (the service runs its body serially).
    private let context: PipelineContext
    private var redis: RedisConnection?
    private var mysql: MariaDBConnection?

    init(_ context: PipelineContext) { self.context = context }

    func queue<T>(_ body: (RedisConnection) throws -> T) throws -> T {
        if let kept = redis {
            do {
                return try body(kept)
            } catch where kept.isBroken {
                redis = nil
                context.logger.debug("queue connection broken since the last use: retrying on a new one", metadata: ["error": "\(error)"])
            }
        }
        let connection = try context.connectQueue()
        redis = connection
        do {
            return try body(connection)
        } catch where connection.isBroken {
            redis = nil
            throw error
        }
    }

    func database<T>(_ body: (MariaDBConnection) throws -> T) throws -> T {
        let connection = try mysql ?? context.connectMySQL()
        mysql = connection
        return try connection.withRetry(policy: context.settings.mysqlRetry, body)
    }
}

/// The worker daemon's background tasks, each a periodic service on a
/// thread of its own. None of them ever stops the daemon: a failed run is
/// logged and the next one happens on schedule.
public enum Maintenance {
    /// Keeps every worker of this process alive in the queue's eyes. It
    /// stops after the workers (the service group stops services in
    /// reverse), and then hands back whatever a worker still holds (one
    /// abandoned mid-job at the shutdown timeout) and forgets the workers.
    ///
    /// A worker on one job past `jobDeadline` gets no heartbeat (see
    /// ``WorkerActivity``): its job goes back to the queue for another
    /// worker; each such stall is logged and counted once.
    public static func heartbeat(_ context: PipelineContext) -> ThreadsService {
        let connections = TaskConnections(context)
        let ids = (0..<context.settings.workers).map { WorkerLoop.workerID(context, $0) }
        let reported = Box(Set<Int>())
        return periodicService(name: "heartbeat", interval: context.settings.heartbeatInterval, logger: context.logger) {
            let stuck = context.activity.stuck(longerThan: context.settings.jobDeadline)
            for index in stuck.subtracting(reported.value).sorted() {
                context.metrics.workerStalls.increment()
                context.logger.error(
                    "worker stuck on one job past the deadline: no more heartbeats for it, so its job returns to the queue",
                    metadata: ["worker": "\(ids[index])", "deadline": "\(context.settings.jobDeadline)"])
            }
            reported.value = stuck
            try connections.queue { redis in
                for (index, id) in ids.enumerated() where !stuck.contains(index) {
                    try context.queue.heartbeat(worker: id, on: redis)
                }
            }
        } onStop: {
            try connections.queue { redis in
                for id in ids { try context.queue.handBack(worker: id, on: redis) }
            }
        }
    }

    /// Returns the jobs of workers (of any process) that stopped heartbeating.
    public static func reaper(_ context: PipelineContext) -> ThreadsService {
        let connections = TaskConnections(context)
        return periodicService(name: "reaper", interval: context.settings.reapInterval, logger: context.logger) {
            let reaped = try connections.queue { try context.queue.reap(timeout: context.settings.reapTimeout, on: $0) }
            if reaped.workers > 0 {
                context.logger.warning(
                    "reaped silent workers",
                    metadata: ["workers": "\(reaped.workers)", "returned": "\(reaped.returned)", "dead": "\(reaped.dead)"])
            }
        }
    }

    /// Applies members changed in MySQL to the shared snapshot: the slow
    /// read outside the lock, the quick apply inside it.
    public static func refresher(_ context: PipelineContext, since watermark: SnapshotWatermark) -> ThreadsService {
        let connections = TaskConnections(context)
        let state = Box(watermark)
        return periodicService(name: "snapshot", interval: context.settings.refreshInterval, logger: context.logger) {
            let changes = try connections.database { connection in
                try SnapshotLoader(connection: connection).changes(since: state.value, survey: context.survey)
            }
            for invalid in changes.invalid {
                context.logger.error("stored member breaks the rules: left out of the snapshot", metadata: ["member": "\(invalid.id)", "reason": "\(invalid.reason)"])
            }
            if !changes.isEmpty {
                let graveyard = context.graveyard
                context.population.write { population in
                    _ = SnapshotLoader.apply(changes, to: population, onRemove: graveyard.bury)
                }
            } else {
                context.population.markRefreshed()
            }
            state.value = changes.watermark
        }
    }

    /// Queues every member who should have a current set and has none (MySQL
    /// is the truth, so a queue that restarted empty loses nothing).
    public static func repairSweep(_ context: PipelineContext) -> ThreadsService {
        let connections = TaskConnections(context)
        return periodicService(name: "repair-sweep", interval: context.settings.sweepInterval, logger: context.logger) {
            let window = context.settings.activeWindow.components.seconds
            let activeSince = Int64(Date().timeIntervalSince1970) - window
            let total = try enqueueForRepair(connections, context) { store, after in
                try store.repairCandidates(activeSince: activeSince, after: after, limit: 5000)
            }
            if total > 0 { context.logger.info("repair sweep queued members", metadata: ["members": "\(total)"]) }
        }
    }

    /// Follows the shard list in MySQL and notices a shard that came back
    /// empty (its marker is gone): every member whose set it held is queued
    /// for repair, without an operator.
    ///
    /// The marker is written back when the loss is noticed, so the next run
    /// would not notice it again: a shard whose members could not all be
    /// queued (the queue or MySQL failing at that moment) stays on a list of
    /// its own and is queued again on every run until that succeeds.
    public static func shardWatcher(_ context: PipelineContext) -> ThreadsService {
        let connections = TaskConnections(context)
        let unqueued = Box(Set<UInt32>())
        return periodicService(name: "shard-watcher", interval: context.settings.watchInterval, logger: context.logger) {
            defer {
                if !unqueued.value.isEmpty {
                    context.logger.warning(
                        "shards came back empty and their members are not all queued yet: retrying next run",
                        metadata: ["shards": "\(unqueued.value.sorted())"])
                }
            }
            let shards = try followShardList(connections, context)
            for shard in shards where shard.state != .down {
                let status: ScoreStore.MarkerStatus
                do {
                    status = try context.scores.ensureMarker(shard: shard.id)
                } catch {
                    context.metrics.shardErrors(shard.id).increment()
                    context.logger.warning("shard unreachable", metadata: ["shard": "\(shard.id)", "error": "\(error)"])
                    continue
                }
                if status.wasMissing { unqueued.value.insert(shard.id) }
            }
            for shard in unqueued.value.sorted() {
                let queued = try queueMembers(of: shard, connections, context)
                unqueued.value.remove(shard)
                if queued > 0 {
                    context.logger.warning(
                        "shard came back empty: its members' sets are queued for repair",
                        metadata: ["shard": "\(shard)", "members": "\(queued)"])
                }
            }
        }
    }

    /// Follows the shard list in MySQL (for processes that read and write
    /// sets but leave repairs to the worker daemon: the web backend).
    public static func shardListReloader(_ context: PipelineContext) -> ThreadsService {
        let connections = TaskConnections(context)
        return periodicService(name: "shard-list", interval: context.settings.watchInterval, logger: context.logger) {
            try followShardList(connections, context)
        }
    }

    /// Checks that every set MySQL records still exists on its shard (a
    /// shard may lose keys without losing its marker: eviction, a flush of
    /// some keys); the missing ones are queued for repair.
    public static func setAudit(_ context: PipelineContext) -> ThreadsService {
        let connections = TaskConnections(context)
        return periodicService(name: "set-audit", interval: context.settings.auditInterval, logger: context.logger) {
            let shards = try connections.database { try ShardCatalog(connection: $0).list() }
            for shard in shards where shard.state != .down {
                var after: MemberID = 0
                var missing: [MemberID] = []
                while true {
                    let members = try connections.database {
                        try GenerationStore(connection: $0).members(onShard: shard.id, after: after, limit: 5000)
                    }
                    guard let last = members.last else { break }
                    let existing = try context.scores.existingSets(members, shard: shard.id)
                    missing += members.filter { !existing.contains($0) }
                    after = last
                }
                if !missing.isEmpty {
                    try connections.queue { _ = try context.queue.enqueue(missing, priority: .repair, on: $0) }
                    context.logger.warning("sets missing from a shard: queued for repair", metadata: ["shard": "\(shard.id)", "members": "\(missing.count)"])
                }
            }
        }
    }

    /// Refreshes the gauges: queue depth per priority, delayed, processing
    /// and its age, dead letters, breaker states, snapshot age and size.
    public static func metricsCollector(_ context: PipelineContext) -> ThreadsService {
        let connections = TaskConnections(context)
        return periodicService(name: "metrics", interval: context.settings.metricsInterval, logger: context.logger) {
            let metrics = context.metrics
            let age = context.population.age
            metrics.snapshotAge.record(Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18)
            metrics.snapshotMembers.record(context.population.read { $0.count })
            for (shard, health) in context.scores.manager.health() {
                let state: Int
                switch health.breaker {
                case .closed: state = 0
                case .halfOpen: state = 1
                case .open: state = 2
                }
                metrics.breakerState(shard).record(state)
            }
            let stats = try connections.queue { try context.queue.stats(on: $0) }
            for (priority, depth) in stats.waiting { metrics.queueDepth(priority.description).record(depth) }
            metrics.queueDelayed.record(stats.delayed)
            metrics.queueDead.record(stats.dead)
            metrics.queueProcessing.record(stats.processing)
            metrics.processingAge.record(Double(stats.oldestProcessingAge) / 1000)
        }
    }

    /// Reads the shard list from MySQL and hands it to the connection manager.
    @discardableResult
    static func followShardList(_ connections: TaskConnections, _ context: PipelineContext) throws -> [ShardInfo] {
        let shards = try connections.database { try ShardCatalog(connection: $0).list() }
        context.scores.manager.update(shards: shards.map { ShardEndpoint(id: $0.id, host: $0.address.host, port: $0.address.port) })
        return shards
    }

    /// Queues at repair priority every member whose set MySQL records on `shard`.
    static func queueMembers(of shard: UInt32, _ connections: TaskConnections, _ context: PipelineContext) throws -> Int {
        try enqueueForRepair(connections, context) { store, after in
            try store.members(onShard: shard, after: after, limit: 5000)
        }
    }

    /// Queues at repair priority every member `page` lists, page by page in
    /// ascending id order (`page` gives the ids after its second argument).
    static func enqueueForRepair(
        _ connections: TaskConnections, _ context: PipelineContext,
        page: @escaping (GenerationStore, MemberID) throws -> [MemberID]
    ) throws -> Int {
        var after: MemberID = 0
        var total = 0
        while true {
            let ids = try connections.database { try page(GenerationStore(connection: $0), after) }
            guard let last = ids.last else { break }
            try connections.queue { _ = try context.queue.enqueue(ids, priority: .repair, on: $0) }
            total += ids.count
            after = last
        }
        return total
    }
}

/// A value a single task thread carries from one run to the next.
final class Box<Value>: @unchecked Sendable {
    // @unchecked Sendable: only its own periodic thread touches it.
    var value: Value
    init(_ value: Value) { self.value = value }
}
