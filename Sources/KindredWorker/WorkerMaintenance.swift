import CoreMetrics
import Foundation
import KindredLogging
import KindredSupport
import Logging
import MemberStore
import RedisClient
import ScoreStore
import Scoring
import ServiceLifecycle
import Synchronization
import WorkQueue

import KindredCore

/// The worker daemon's own background tasks (heartbeats, the reaper, the
/// repair sweep, the shard watcher), each a periodic service on a thread
/// of its own. None of them ever stops the daemon: a failed run is logged
/// and the next one happens on schedule.
extension Maintenance {
    /// Keeps every worker of this process alive in the queue's eyes. It
    /// stops after the workers (the service group stops services in
    /// reverse), and then hands back whatever a worker still holds (one
    /// abandoned mid-job at the shutdown timeout) and forgets the workers.
    ///
    /// A worker on one job past `jobDeadline` gets no heartbeat (see
    /// ``WorkerActivity``): its job goes back to the queue for another
    /// worker; each such stall is logged and counted once.
    package static func heartbeat(_ runtime: WorkerRuntime) -> ThreadsService {
        let core = runtime.core
        let ids = (0..<runtime.settings.workers).map { WorkerLoop.workerID(runtime, $0) }
        let reported = Locked(Set<Int>())
        return periodicService(name: "heartbeat", interval: runtime.settings.heartbeatInterval, logger: core.logger, sessions: core.sessions) { session in
            let stuck = runtime.activity.stuck(longerThan: runtime.settings.jobDeadline)
            for index in stuck.subtracting(reported.withLock { $0 }).sorted() {
                core.metrics.workerStalls.increment()
                core.logger.error(
                    "worker stuck on one job past the deadline: no more heartbeats for it, so its job returns to the queue",
                    metadata: ["worker": "\(ids[index])", "deadline_ms": .milliseconds(runtime.settings.jobDeadline)])
            }
            reported.withLock { $0 = stuck }
            try session.queue { redis in
                for (index, id) in ids.enumerated() where !stuck.contains(index) {
                    try runtime.queue.heartbeat(worker: id, on: redis)
                }
            }
        } onStop: { session in
            try session.queue { redis in
                for id in ids { try runtime.queue.handBack(worker: id, on: redis) }
            }
        }
    }

    /// Returns the jobs of workers (of any process) that stopped heartbeating.
    package static func reaper(_ runtime: WorkerRuntime) -> ThreadsService {
        let core = runtime.core
        return periodicService(name: "reaper", interval: runtime.settings.reapInterval, logger: core.logger, sessions: core.sessions) { session in
            let reaped = try session.queue { try runtime.queue.reap(timeout: runtime.settings.reapTimeout, on: $0) }
            if reaped.workers > 0 {
                core.logger.warning(
                    "reaped silent workers",
                    metadata: ["workers": "\(reaped.workers)", "returned": "\(reaped.returned)", "dead": "\(reaped.dead)"])
            }
        }
    }

    /// Queues every member who should have a current set and has none, and
    /// every member whose change is not yet published into other members'
    /// sets (MySQL is the truth, so a queue that restarted empty loses
    /// nothing). Members whose change every stored set's scan already
    /// covered are settled in MySQL without a job (a population imported
    /// before its sets were built).
    package static func repairSweep(_ runtime: WorkerRuntime) -> ThreadsService {
        let core = runtime.core
        return periodicService(name: "repair-sweep", interval: runtime.settings.sweepInterval, logger: core.logger, sessions: core.sessions) { session in
            let window = runtime.settings.activeWindow.components.seconds
            let activeSince = Int64(Date().timeIntervalSince1970) - window
            let total = try enqueueForRepair(session, runtime) { store, after in
                try store.repairCandidates(activeSince: activeSince, after: after, limit: 5000)
            }
            if total > 0 { core.logger.info("repair sweep queued members", metadata: ["members": "\(total)"]) }
            let settled = try session.database {
                try $0.publications.settleAllUnpublished(forgettingTombstonesOlderThan: .seconds(86_400))
            }
            if settled > 0 {
                core.logger.info("members settled as published: every stored set already ranks them as they are", metadata: ["members": "\(settled)"])
            }
            var after: MemberID = 0
            var publications = 0
            while true {
                let ids = try session.database { try $0.publications.needingPublication(after: after, limit: 5000) }
                guard let last = ids.last else { break }
                try session.queue { _ = try runtime.queue.enqueue(ids, priority: .repair, on: $0) }
                publications += ids.count
                after = last
            }
            if publications > 0 {
                core.logger.info("repair sweep queued members whose change is not yet published", metadata: ["members": "\(publications)"])
            }
        }
    }

    /// Follows the shard list in MySQL and notices a shard that lost data:
    /// one that came back empty (its marker is gone), or one restored from
    /// an older copy of its data (its write sequence went back to or below
    /// the highest value recorded in MySQL). Every member whose set it held
    /// is queued for repair, without an operator. On a Redis Cluster a
    /// sequence that went back means one master failed over before its
    /// last writes reached the replica: nothing is queued wholesale, the
    /// set audit rebuilds the sets it finds lost.
    ///
    /// The marker and the sequence are written back when the loss is
    /// noticed, so the next run would not notice it again: a shard whose
    /// members could not all be queued (the queue or MySQL failing at that
    /// moment) stays on a list of its own and is queued again on every run
    /// until that succeeds.
    package static func shardWatcher(_ runtime: WorkerRuntime) -> ThreadsService {
        let core = runtime.core
        let unqueued = Locked(Set<UInt32>())
        return periodicService(name: "shard-watcher", interval: core.settings.watchInterval, logger: core.logger, sessions: core.sessions) { session in
            defer {
                let left = unqueued.withLock { $0.sorted() }
                if !left.isEmpty {
                    core.logger.warning(
                        "shards came back empty and their members are not all queued yet: retrying next run",
                        metadata: ["shards": "\(left)"])
                }
            }
            let shards = try followShardList(session, core)
            for shard in shards where shard.state != .down {
                // Read before the shard advances: any value recorded came from
                // an earlier INCR, so a shard that kept its data answers more.
                let recorded = try session.database { try $0.shards.sequence(of: shard.id) }
                let status: ScoreStore.MarkerStatus
                let sequence: Int
                do {
                    status = try core.scores.ensureMarker(shard: shard.id)
                    sequence = try core.scores.advanceSequence(shard: shard.id)
                } catch {
                    core.metrics.shardErrors(shard.id).increment()
                    core.logger.warning("shard unreachable", metadata: ["shard": "\(shard.id)", "error": "\(error)"])
                    continue
                }
                let restored = !status.wasMissing && Int64(sequence) <= recorded
                if restored && shard.address.isCluster {
                    // On a cluster the sequence lives on one master: going back means that master's
                    // replica took over before the last increments reached it (a failover), not
                    // that the shard lost its data. Its other sets are intact: the set audit finds
                    // each set whose last write was lost (its answers version against MySQL) and rebuilds
                    // only those, instead of every set of the shard.
                    try session.database { try $0.shards.resetSequence(shard.id, to: Int64(sequence)) }
                    core.logger.warning(
                        "a cluster shard's write sequence went back (a failover lost the last writes of one master): the set audit rebuilds the sets it finds lost",
                        metadata: ["shard": "\(shard.id)"])
                } else if status.wasMissing || restored {
                    unqueued.withLock { _ = $0.insert(shard.id) }
                    try session.database { try $0.shards.resetSequence(shard.id, to: Int64(sequence)) }
                    core.logger.warning(
                        status.wasMissing
                            ? "shard came back empty: its members' sets are queued for repair"
                            : "shard was restored from an older copy of its data: its members' sets are queued for repair",
                        metadata: ["shard": "\(shard.id)"])
                } else {
                    try session.database { try $0.shards.recordSequence(shard.id, Int64(sequence)) }
                }
            }
            for shard in unqueued.withLock({ $0.sorted() }) {
                let queued = try queueMembers(of: shard, session, runtime)
                unqueued.withLock { _ = $0.remove(shard) }
                if queued > 0 {
                    core.logger.warning("members of a shard that lost data queued for repair", metadata: ["shard": "\(shard)", "members": "\(queued)"])
                }
            }
        }
    }

    /// Queues at repair priority every member whose set MySQL records on `shard`.
    static func queueMembers(of shard: UInt32, _ session: ThreadSession, _ runtime: WorkerRuntime) throws -> Int {
        try enqueueForRepair(session, runtime) { store, after in
            try store.members(onShard: shard, after: after, limit: 5000)
        }
    }

    /// Queues at repair priority every member `page` lists, page by page in
    /// ascending id order (`page` gives the ids after its second argument).
    static func enqueueForRepair(
        _ session: ThreadSession, _ runtime: WorkerRuntime,
        page: @escaping (GenerationStore, MemberID) throws -> [MemberID]
    ) throws -> Int {
        var after: MemberID = 0
        var total = 0
        while true {
            let ids = try session.database { try page($0.generations, after) }
            guard let last = ids.last else { break }
            try session.queue { _ = try runtime.queue.enqueue(ids, priority: .repair, on: $0) }
            total += ids.count
            after = last
        }
        return total
    }
}
