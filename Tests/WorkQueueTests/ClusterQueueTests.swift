import Foundation
import RedisClient
import Synchronization
import Testing
import TestSupport
import WorkQueue

/// `KINDRED_QUEUE` parsing and the queue's keys on a cluster: no server.
@Suite("Work queue addresses and cluster keys")
struct QueueAddressTests {
    @Test("redis:// is one server, redis+cluster:// a cluster's seed node; a cluster has no database; no password is printed")
    func addresses() throws {
        let server = try QueueAddress("redis://queue:s3cret@10.0.0.5:7000/3")
        #expect(!server.isCluster && server.url.database == 3 && server.url.password == "s3cret")
        #expect(server.description == "redis://queue:***@10.0.0.5:7000/3")
        let cluster = try QueueAddress("REDIS+CLUSTER://queue:s3cret@10.0.0.6:7001")
        #expect(cluster.isCluster && cluster.url.host == "10.0.0.6" && cluster.url.port == 7001 && cluster.url.user == "queue")
        #expect(cluster.description == "redis+cluster://queue:***@10.0.0.6:7001")
        let database = #expect(throws: RedisURLError.self) { try QueueAddress("redis+cluster://10.0.0.6:7001/2") }
        #expect(database?.description.contains("only database 0") == true)
        let bad = #expect(throws: RedisURLError.self) { try QueueAddress("redis+cluster://user:pw@host:99999") }
        #expect(bad?.description.contains("pw") == false)
        #expect(throws: RedisURLError.self) { try QueueAddress("http://10.0.0.6:7001") }
    }

    @Test("on a cluster every queue key carries the namespace as one hash tag, so all share one slot; a tagged namespace stays")
    func clusterKeys() {
        let keys = QueueKeys().onCluster
        #expect(keys.namespace == "{kq}")
        #expect(QueueKeys(namespace: "site{a}").onCluster.namespace == "site{a}")
        #expect(QueueKeys(namespace: "{}x").onCluster.namespace == "{{}x}", "an empty tag is no tag")
        let queue = WorkQueue(keys: QueueKeys(namespace: "kindred"))
        #expect(queue.keys.onCluster.namespace == "{kindred}")
    }
}

/// The queue on a real Redis Cluster (three masters, three replicas): one
/// cluster per test, since two of them break or reshape it.
@Suite("Work queue on a Redis Cluster", .serialized, .timeLimit(.minutes(5)), .offCooperativePool)
struct ClusterQueueTests {
    let work = WorkQueue(retry: JobRetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(10), maxDelay: .milliseconds(20)))
    /// The slot every queue key lives in.
    let slot = HashSlot(key: QueueKeys().onCluster.namespace)

    func address(_ node: ClusterNode) throws -> QueueAddress {
        try QueueAddress("redis+cluster://127.0.0.1:\(node.port)")
    }

    /// The keys on `node` (a test cluster holds nothing else).
    func keys(on node: ClusterNode, _ cluster: RedisCluster) throws -> [String] {
        let redis = try #require(cluster.server(node)).connect()
        defer { redis.close() }
        return (try redis.sendChecked(["KEYS", "*"]).array ?? []).compactMap(\.string).sorted()
    }

    @Test("every queue key lives in one slot on its master; jobs, retries, dead letters and marks work as on one server; a new connection outlives its seed")
    func queueOnCluster() throws {
        let cluster = try RedisCluster()
        let map = try cluster.slotMap()
        let owner = try #require(map.master(for: slot))
        // Seeded by another master: every command is routed away from the seed.
        let seed = try #require(map.masterNodes.first { $0 != owner })
        let queue = try QueueConnection(address: try address(seed))
        defer { queue.close() }

        #expect(try work.enqueue((1...30).map(UInt32.init), priority: .backfill, on: queue).enqueued == 30)
        #expect(try work.enqueue([7], priority: .interactive, on: queue).promoted == 1)
        let first = try #require(try work.fetch(worker: "w1", on: queue))
        #expect(first.member == 7 && first.priority == .interactive)
        #expect(try work.complete(first, worker: "w1", on: queue))
        let second = try #require(try work.fetch(worker: "w1", on: queue))
        // Retried a minute later: the suite's 10-20 ms delay let a loaded run fetch the retry as the
        // third job.
        let patient = WorkQueue(retry: JobRetryPolicy(maxAttempts: 2, baseDelay: .seconds(60), maxDelay: .seconds(60)))
        guard case .retry = try patient.fail(second, worker: "w1", reason: "shard down", on: queue) else {
            Issue.record("a first failure is retried")
            return
        }
        let third = try #require(try work.fetch(worker: "w1", on: queue))
        #expect(try work.bury(third, worker: "w1", reason: "bad data", on: queue) == .dead(attempts: 1))
        #expect(try work.deadJobs(on: queue).map(\.member) == [third.member])
        let stats = try work.stats(on: queue)
        #expect(stats.waiting.values.reduce(0, +) == 27 && stats.delayed == 1 && stats.dead == 1 && stats.workers == 1)

        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try work.markDeleted(42, now: now, on: queue)
        try work.markBlocked(5, [6], now: now, on: queue)
        try work.requestDeletionMarksVersion(on: queue)
        #expect(try work.readDeletionMarksVersion(on: queue) == 2)
        let marks = try work.deletionMarks(on: queue)
        #expect(marks.version == 2 && marks.members == [42] && marks.blocked[5] == [6] && marks.blocked[6] == [5])
        try work.ping(on: queue)

        // Every key is the queue's, in its slot, on the slot's master; no other master holds one.
        let held = try keys(on: owner, cluster)
        #expect(held.count >= 8 && held.allSatisfy { $0.hasPrefix("{kq}:") }, "\(held)")
        let redis = try #require(cluster.server(owner)).connect()
        #expect(try redis.sendChecked(RedisCommand("CLUSTER", "COUNTKEYSINSLOT", String(slot.value))).int == held.count)
        redis.close()
        for other in map.masterNodes where other != owner {
            #expect(try keys(on: other, cluster).isEmpty, "\(other)")
        }

        // The seed node gone: a new connection from the same address asks the nodes learned before.
        try #require(cluster.server(seed)).kill()
        let again = try QueueConnection(address: try address(seed), connectTimeout: .milliseconds(500))
        defer { again.close() }
        #expect(try work.stats(on: again).dead == 1)
    }

    @Test("the queue's master SIGKILLed: its replica takes over, calls wait the failover out, and no replicated job is lost")
    func failover() throws {
        let cluster = try RedisCluster(nodeTimeout: .seconds(2))
        let map = try cluster.slotMap()
        let owner = try #require(map.master(for: slot))
        let seed = try #require(map.masterNodes.first { $0 != owner })
        let queue = try QueueConnection(address: try address(seed), routing: ClusterRouting.Policy(retryBudget: .seconds(60)))
        defer { queue.close() }
        #expect(try work.enqueue((1...100).map(UInt32.init), priority: .backfill, on: queue).enqueued == 100)
        // Replication is asynchronous: the jobs reach the replica before the kill.
        let ownerServer = try #require(cluster.server(owner))
        let redis = try ownerServer.connect()
        #expect(try redis.send(RedisCommand("WAIT", "1", "5000")).int == 1)
        redis.close()
        ownerServer.kill()

        // The connection to the dead master may break under the first call (which may have run):
        // the caller calls again, as the worker loop does; nothing else fails.
        var broken = 0
        func call<T>(_ body: () throws(QueueError) -> T) throws -> T {
            do { return try body() } catch where error.isConnectionBroken {
                broken += 1
                return try body()
            }
        }
        #expect(try call { () throws(QueueError) in try work.enqueue((101...120).map(UInt32.init), priority: .repair, on: queue) }.enqueued == 20)
        #expect(broken <= 1)
        var fetched: [UInt32] = []
        while let job = try call({ () throws(QueueError) in try work.fetch(worker: "w1", on: queue) }) {
            fetched.append(job.member)
            #expect(try work.complete(job, worker: "w1", on: queue))
        }
        #expect(fetched.sorted() == (1...120).map(UInt32.init))
        #expect(broken <= 1)
        let after = try cluster.slotMap()
        let newOwner = try #require(after.master(for: slot))
        #expect(newOwner != owner && map.replicas[owner]?.contains(newOwner) == true, "\(after.masterNodes)")
    }

    @Test("the queue's slot resharded with redis-cli while jobs flow: no call fails, every job runs exactly once")
    func reshard() throws {
        let cluster = try RedisCluster()
        let map = try cluster.slotMap()
        let owner = try #require(map.master(for: slot))
        let destination = try #require(map.masterNodes.first { $0 != owner })
        let seed = destination
        let owned = (0..<HashSlot.count).filter { map.master(for: HashSlot($0)!) == owner }.count

        final class Shared: Sendable {
            let done = Atomic<Bool>(false)
            let finished = Atomic<Bool>(false)
            let errors = Mutex<[String]>([])
            let enqueued = Mutex<[UInt32]>([])
            let fetched = Mutex<[UInt32]>([])
        }
        let shared = Shared()
        let address = try address(seed)
        let work = work
        // One thread enqueues a new member and runs one job, over and over, until the reshard is over.
        let loop = Thread {
            defer { shared.finished.store(true, ordering: .sequentiallyConsistent) }
            do {
                let queue = try QueueConnection(address: address, routing: ClusterRouting.Policy(retryBudget: .seconds(30)))
                defer { queue.close() }
                var next: UInt32 = 1
                var rounds = 0
                while !shared.done.load(ordering: .sequentiallyConsistent) || rounds < 20 {
                    rounds += 1
                    try work.enqueue([next], priority: .backfill, on: queue)
                    shared.enqueued.withLock { $0.append(next) }
                    next += 1
                    if let job = try work.fetch(worker: "w1", on: queue) {
                        shared.fetched.withLock { $0.append(job.member) }
                        _ = try work.complete(job, worker: "w1", on: queue)
                    }
                }
                while let job = try work.fetch(worker: "w1", on: queue) {
                    shared.fetched.withLock { $0.append(job.member) }
                    _ = try work.complete(job, worker: "w1", on: queue)
                }
            } catch {
                shared.errors.withLock { $0.append("\(error)") }
            }
        }
        loop.start()
        let started = shared.enqueued.withLock { $0.count }
        try cluster.reshard(owned, from: owner, to: destination)
        let during = shared.enqueued.withLock { $0.count } - started
        shared.done.store(true, ordering: .sequentiallyConsistent)
        try poll(until: "the job loop to finish", timeout: .seconds(60), interval: .milliseconds(20)) {
            shared.finished.load(ordering: .sequentiallyConsistent)
        }

        #expect(shared.errors.withLock { $0 } == [])
        let enqueued = shared.enqueued.withLock { $0 }
        let fetched = shared.fetched.withLock { $0 }
        #expect(fetched.sorted() == enqueued.sorted(), "each job ran once: \(fetched.count) runs of \(enqueued.count) jobs")
        #expect(during > 0, "jobs flowed during the reshard")
        #expect(try cluster.slotMap().master(for: slot) == destination)
        let held = try keys(on: destination, cluster)
        #expect(held.contains { $0.hasPrefix("{kq}:") })
    }
}
