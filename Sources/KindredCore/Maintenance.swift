import CoreMetrics
import Foundation
import KindredLogging
import KindredSupport
import Logging
import MemberStore
import RedisClient
import Scoring
import ScoreStore
import ServiceLifecycle
import Synchronization
import WorkQueue

/// The background tasks every program with a snapshot shares (the
/// worker's own are in KindredWorker), each a periodic service on a thread
/// of its own. None of them ever stops the program: a failed run is logged
/// and the next one happens on schedule.
package enum Maintenance {
    /// Keeps the snapshot and the set index following MySQL
    /// (``SnapshotFollower``): the slow read outside the lock, the quick
    /// apply inside it. Jobs refresh on their own too; this keeps an idle
    /// process fresh.
    package static func refresher(_ core: GenerationCore) -> ThreadsService {
        return periodicService(name: "snapshot", interval: core.settings.refreshInterval, logger: core.logger, sessions: core.sessions) { session in
            try session.database { try core.follower.refresh(in: $0) }
        }
    }

    /// Follows the shard list in MySQL (for processes that read and write
    /// sets but leave repairs to the worker daemon: the web backend).
    package static func shardListReloader(_ core: GenerationCore) -> ThreadsService {
        return periodicService(name: "shard-list", interval: core.settings.watchInterval, logger: core.logger, sessions: core.sessions) { session in
            try followShardList(session, core)
        }
    }

    /// Refreshes the gauges: snapshot age and size, each shard's breaker
    /// state and whether it answers now (`kindred_shard_up`: one marker read
    /// per shard, failing fast while its breaker is open), and, given the
    /// queue (the worker's; the web backend does not own the queue), queue
    /// depth per priority, delayed, processing and its age, dead letters.
    /// The gauges of a shard that left the shard list are removed, every
    /// time (a probe that checked it just before it left may record it
    /// again once).
    package static func metricsCollector(_ core: GenerationCore, queue: WorkQueue? = nil) -> ThreadsService {
        let seen = SeenShards()
        return periodicService(name: "metrics", interval: core.settings.metricsInterval, logger: core.logger, sessions: core.sessions) { session in
            let metrics = core.metrics
            let age = core.population.age
            metrics.snapshotAge.record(age.inSeconds)
            metrics.snapshotMembers.record(core.population.read { $0.count })
            for (shard, health) in core.scores.manager.health() {
                let state: Int
                switch health.breaker {
                case .closed: state = 0
                case .halfOpen: state = 1
                case .open: state = 2
                }
                metrics.breakerState(shard).record(state)
            }
            let current = core.scores.manager.shards.map(\.id)
            for shard in current {
                metrics.shardUp(shard).record(core.scores.answers(shard: shard) ? 1 : 0)
            }
            for shard in seen.gone(current: current) { metrics.forgetShard(shard) }
            guard let queue else { return }
            let stats = try session.queue { try queue.stats(on: $0) }
            for (priority, depth) in stats.waiting { metrics.queueDepth(priority.description).record(depth) }
            metrics.queueDelayed.record(stats.delayed)
            metrics.queueDead.record(stats.dead)
            metrics.queueProcessing.record(stats.processing)
            metrics.processingAge.record(Double(stats.oldestProcessingAge) / 1000)
        }
    }

    /// The shards a metrics collector has seen in the shard list.
    private final class SeenShards: Sendable {
        private let seen = Mutex<Set<ShardID>>([])

        /// Notes `current` and answers every shard seen before that is not
        /// in it, in id order.
        func gone(current: [ShardID]) -> [ShardID] {
            seen.withLock { seen in
                seen.formUnion(current)
                return seen.subtracting(current).sorted()
            }
        }
    }

    /// Reads the shard list from MySQL and hands it to the connection manager.
    @discardableResult
    package static func followShardList(_ session: ThreadSession, _ core: GenerationCore) throws -> [ShardInfo] {
        let shards = try session.database { try $0.shards.list() }
        core.scores.manager.update(shards: shards.map { ShardEndpoint(id: $0.id, address: $0.address.url, isCluster: $0.address.isCluster) })
        return shards
    }

}
