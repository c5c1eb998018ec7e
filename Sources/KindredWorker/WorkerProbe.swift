import CoreMetrics
import Foundation
import KindredCore
import KindredSupport
import MemberStore
import RedisClient
import ScoreStore
import Synchronization
import WorkQueue

/// What the worker's `/readyz` checks: whether this worker can take and
/// finish jobs now. A job is fetched from the queue and every job reads the
/// member from MySQL and records its generation there, so the worker is
/// ready when both answer. Shards are reported (and set `kindred_shard_up`)
/// but do not decide: a job for a member of a shard that is down is
/// postponed, and the others proceed.
///
/// One check at a time (concurrent probes wait for it), on the caller's
/// thread: blocking, so call ``check()`` off the cooperative pool. Each
/// check opens its own MySQL session and queue connection on the calling
/// thread and closes them before it returns (probes come every few
/// seconds; a connect costs about a millisecond), so no connection ever
/// moves between threads. Each check is bounded by short timeouts (MySQL 2 s
/// to connect and to read, the queue 500 ms and 1 s, a shard the manager's
/// own).
package final class WorkerProbe: Sendable {
    private let runtime: WorkerRuntime
    private var core: GenerationCore { runtime.core }
    private let lock = Mutex(())

    package init(runtime: WorkerRuntime) { self.runtime = runtime }

    /// The outcome of one check.
    package struct Report: Sendable {
        package var mysql: Bool
        package var queue: Bool
        package var shards: [(id: UInt32, up: Bool)]
        /// The worker can take and finish jobs.
        package var ready: Bool { mysql && queue }

        /// `{"status": "ready"|"not_ready", "mysql", "queue", "shards": {id: "ok"|"unavailable"}}`.
        package var json: String {
            func state(_ up: Bool) -> String { up ? "\"ok\"" : "\"unavailable\"" }
            let shardList = shards.map { "\"\($0.id)\":\(state($0.up))" }.joined(separator: ",")
            return "{\"status\":\"\(ready ? "ready" : "not_ready")\",\"mysql\":\(state(mysql)),\"queue\":\(state(queue)),\"shards\":{\(shardList)}}\n"
        }
    }

    /// Checks MySQL, the queue and every shard once.
    /// ``check()`` as the metrics endpoint's `/readyz` takes it.
    package func readiness() -> (ready: Bool, json: String) {
        let report = check()
        return (report.ready, report.json)
    }

    package func check() -> Report {
        lock.withLock { _ in
            let mysqlUp = pingMySQL()
            let queueUp = pingQueue()
            let shards = core.scores.manager.shards.map(\.id).map { shard -> (id: UInt32, up: Bool) in
                let up = core.scores.answers(shard: shard)
                core.metrics.shardUp(shard).record(up ? 1 : 0)
                return (shard, up)
            }
            return Report(mysql: mysqlUp, queue: queueUp, shards: shards)
        }
    }

    private func pingMySQL() -> Bool {
        guard let session = try? StoreSession.connect(core.sessions.store.withTimeouts(.seconds(2))) else { return false }
        defer { session.close() }
        return (try? session.ping()) != nil
    }

    private func pingQueue() -> Bool {
        guard let address = core.sessions.queue,
            let connection = try? QueueConnection(
                address: address, connectTimeout: .milliseconds(500), readTimeout: .seconds(1),
                routing: ClusterRouting.Policy(retryBudget: .milliseconds(500)))
        else { return false }
        defer { connection.close() }
        return (try? runtime.queue.ping(on: connection)) != nil
    }
}
