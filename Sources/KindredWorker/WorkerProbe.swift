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
/// check is bounded by short timeouts (MySQL 2 s to connect and to read,
/// the queue 500 ms and 1 s, a shard the manager's own).
public final class WorkerProbe: @unchecked Sendable {
    // Why this is safe: `mysql` and `redis` (a session and a queue
    // connection, C handles inside) are only touched inside `lock.withLock`
    // (in `check()`) and in `deinit`, when no other thread holds a
    // reference. Probes run on a new thread each (MetricsServer), so they
    // move between threads, but only ever under that lock: one thread at a
    // time, never two at once. `runtime` is a Sendable `let`.
    private let runtime: WorkerRuntime
    private var core: GenerationCore { runtime.core }
    private let lock = Mutex(())
    private var mysql: StoreSession?
    private var redis: QueueConnection?

    public init(runtime: WorkerRuntime) { self.runtime = runtime }

    deinit {
        mysql?.close()
        redis?.close()
    }

    /// The outcome of one check.
    public struct Report: Sendable {
        public var mysql: Bool
        public var queue: Bool
        public var shards: [(id: UInt32, up: Bool)]
        /// The worker can take and finish jobs.
        public var ready: Bool { mysql && queue }

        /// `{"status": "ready"|"not_ready", "mysql", "queue", "shards": {id: "ok"|"unavailable"}}`.
        public var json: String {
            func state(_ up: Bool) -> String { up ? "\"ok\"" : "\"unavailable\"" }
            let shardList = shards.map { "\"\($0.id)\":\(state($0.up))" }.joined(separator: ",")
            return "{\"status\":\"\(ready ? "ready" : "not_ready")\",\"mysql\":\(state(mysql)),\"queue\":\(state(queue)),\"shards\":{\(shardList)}}\n"
        }
    }

    /// Checks MySQL, the queue and every shard once.
    /// ``check()`` as the metrics endpoint's `/readyz` takes it.
    public func readiness() -> (ready: Bool, json: String) {
        let report = check()
        return (report.ready, report.json)
    }

    public func check() -> Report {
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

    /// A kept connection that fails (the server restarted since) is
    /// replaced by one new connection, pinged once more.
    private func pingMySQL() -> Bool {
        if let kept = mysql {
            if (try? kept.ping()) != nil { return true }
            kept.close()
            mysql = nil
        }
        do {
            let session = try StoreSession.connect(core.sessions.store.withTimeouts(.seconds(2)))
            mysql = session
            try session.ping()
            return true
        } catch {
            mysql?.close()
            mysql = nil
            return false
        }
    }

    private func pingQueue() -> Bool {
        if let kept = redis {
            if (try? runtime.queue.ping(on: kept)) != nil { return true }
            kept.close()
            redis = nil
        }
        guard let address = core.sessions.queue else { return false }
        do {
            let connection = try QueueConnection(
                address: address, connectTimeout: .milliseconds(500), readTimeout: .seconds(1),
                routing: ClusterRouting.Policy(retryBudget: .milliseconds(500)))
            redis = connection
            try runtime.queue.ping(on: connection)
            return true
        } catch {
            redis?.close()
            redis = nil
            return false
        }
    }
}
