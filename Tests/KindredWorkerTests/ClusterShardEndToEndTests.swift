import Foundation
import Hummingbird
@testable import KindredCore
@testable import KindredTestKit
@testable import KindredWorker
import MariaDBClient
@_spi(Testing) import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Testing
import TestSupport
import WorkQueue

/// A Redis Cluster as one shard beside standalone ones, under a real
/// `kindred worker`: every set right, and still right after a master was
/// SIGKILLed while the worker rewrote every set, after slots were resharded
/// under load, and after a failover lost a write.
@Suite("A cluster shard end to end", .serialized, .timeLimit(.minutes(10)))
struct ClusterShardEndToEndTests {
    @Test("the worker builds every set on a cluster shard and a standalone one; a master killed mid-run loses nothing")
    func workerOnACluster() async throws {
        try await onThread("clusterEndToEnd") {
            let cluster = try RedisCluster(nodeTimeout: .seconds(2))
            let installation = try Installation(memberLimit: 300, standaloneShards: 1, cluster: cluster)
            try installation.enqueueAll()
            let worker = try WorkerChecks.startWorker(installation)
            defer { worker.terminate() }
            try WorkerChecks.waitForGenerated(installation, atLeast: installation.members.count, worker: worker)
            _ = try WorkerChecks.waitForIdleQueue(installation)
            try WorkerChecks.expectAllSetsCorrect(installation)

            // Members live on both shards, and the cluster's sets on all its masters.
            let connection = try installation.connectMySQL()
            let directory = try SessionDirectory(configuration: installation.mysqlConfiguration)
            var onCluster: [MemberID] = []
            for member in installation.members where try directory.shard(of: member.id) == installation.clusterShardID {
                onCluster.append(member.id)
            }
            connection.close()
            #expect(onCluster.count > 50 && onCluster.count < installation.members.count - 50, "\(onCluster.count) on the cluster")
            let map = try cluster.slotMap()
            #expect(Set(onCluster.map { map.master(for: ScoreLayout.slot(of: $0)) }).count == 3)

            // Every set rewritten while one master dies: its replica takes over and nothing is lost.
            for node in map.masterNodes {
                let redis = try #require(cluster.server(node)).connect()
                _ = try redis.send(["WAIT", "1", "5000"])
                redis.close()
            }
            let victim = try #require(map.master(for: ScoreLayout.slot(of: onCluster[0])))
            let store = installation.scoreStore()
            defer { store.manager.close() }
            let clusterShard = try #require(installation.clusterShardID)
            let before = try store.readMetas(onCluster, shard: clusterShard)
            let queue = try installation.queueServer.connect()
            defer { queue.close() }
            // Interactive: each member's own set is written again (a repair of a set that is fine writes nothing).
            try WorkQueue().enqueue(installation.members.map(\.id), priority: .interactive, on: QueueConnection(queue))
            try #require(cluster.server(victim)).kill()
            let stats = try WorkerChecks.waitForIdleQueue(installation, timeout: .seconds(300))
            #expect(stats.dead == 0, "dead letters: \(stats.dead)")
            #expect(worker.isRunning, "\(worker.logTail())")
            try WorkerChecks.expectAllSetsCorrect(installation)
            #expect(try cluster.slotMap().master(for: ScoreLayout.slot(of: onCluster[0])) != victim)
            // Every cluster member's set was written again, the dead master's ones included.
            let after = try store.readMetas(onCluster, shard: clusterShard)
            let rewritten = zip(before, after).filter { $0.0?.written != $0.1?.written }.count
            #expect(rewritten == onCluster.count, "\(rewritten) of \(onCluster.count) sets written again")
        }
    }

    @Test("web reads of a dead master's members answer 503 with Retry-After while its replica takes over, then the exact page; other members are served throughout")
    func readsThroughAFailover() async throws {
        let cluster = try await onThread { try RedisCluster(nodeTimeout: .seconds(2)) }
        let installation = try await onThread { try Installation(memberLimit: 150, standaloneShards: 1, cluster: cluster) }
        let web = try await onThread { try WebHarness(installation: installation, generateFirst: true) }
        let clusterShard = try #require(installation.clusterShardID)
        let (onCluster, map) = try await onThread { () -> ([MemberID], ClusterSlotMap) in
            let directory = try SessionDirectory(configuration: installation.mysqlConfiguration)
            let ids = try installation.members.map(\.id).filter { try directory.shard(of: $0) == clusterShard }
            let map = try cluster.slotMap()
            for node in map.masterNodes {
                let redis = try #require(cluster.server(node)).connect()
                _ = try redis.send(["WAIT", "1", "5000"])
                redis.close()
            }
            return (ids, map)
        }
        let member = try #require(onCluster.first)
        let victim = try #require(map.master(for: ScoreLayout.slot(of: member)))
        let other = try #require(onCluster.first { map.master(for: ScoreLayout.slot(of: $0)) != victim })
        let expected = try await Installation.expectedMatchesOffPool(installation.members, survey: installation.survey)
        let before = try await web.send(.get, "/v1/members/\(member)/matches?limit=20")
        #expect(before.status == 200 && before.matches == Array(expected[member]!.prefix(20)), "\(before.body)")

        let victimServer = try #require(cluster.server(victim))
        try await onThread { victimServer.kill() }
        var unavailable = 0
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while true {
            let reply = try await web.send(.get, "/v1/members/\(member)/matches?limit=20")
            if reply.status == 200 {
                #expect(reply.matches == Array(expected[member]!.prefix(20)), "\(reply.body)")
                break
            }
            #expect(reply.status == 503 && reply.headers[.retryAfter] != nil, "\(reply.status): \(reply.body)")
            unavailable += 1
            // A member on another master is served meanwhile.
            let served = try await web.send(.get, "/v1/members/\(other)/matches?limit=5")
            #expect(served.status == 200, "\(served.status): \(served.body)")
            guard clock.now < deadline else {
                Issue.record("still \(reply.status) 60 s after the master was killed")
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        print("reads through a failover: \(unavailable) answered 503 before the replica took over")
    }

    /// The cluster shard's members.
    static func membersOnCluster(_ installation: Installation) throws -> [MemberID] {
        let clusterShard = try #require(installation.clusterShardID)
        let directory = try SessionDirectory(configuration: installation.mysqlConfiguration)
        return try installation.members.map(\.id).filter { try directory.shard(of: $0) == clusterShard }
    }

    @Test("a master's slots resharded with redis-cli while the worker rewrites every set and the web reads them: every read answers the exact page, no job fails, every set stays right")
    func reshardUnderLoad() async throws {
        let cluster = try await onThread { try RedisCluster() }
        let installation = try await onThread { try Installation(memberLimit: 200, standaloneShards: 1, cluster: cluster) }
        let web = try await onThread { try WebHarness(installation: installation, generateFirst: true) }
        let onCluster = try await onThread { try Self.membersOnCluster(installation) }
        let map = try await onThread { try cluster.slotMap() }
        let source = try #require(map.masterNodes.first)
        let destination = try #require(map.masterNodes.last)
        let owned = (0..<HashSlot.count).filter { map.master(for: HashSlot($0)!) == source }.count
        // The members whose keys move, read over and over during the move.
        let moving = onCluster.filter { map.master(for: ScoreLayout.slot(of: $0)) == source }
        #expect(moving.count >= 10, "\(moving.count) members on the source master")
        let expected = try await Installation.expectedMatchesOffPool(installation.members, survey: installation.survey)
        // The probes check the cluster shard through its routing (its marker may live on any master).
        let health = try await web.send(.get, "/healthz")
        #expect(health.status == 200 && health.json["status"] as? String == "ok", "\(health.body)")

        let worker = try await onThread { try WorkerChecks.startWorker(installation) }
        defer { worker.terminate() }
        try await onThread {
            let queue = try installation.queueServer.connect()
            defer { queue.close() }
            // Interactive: every member's own set is written again while the slots move.
            try WorkQueue().enqueue(installation.members.map(\.id), priority: .interactive, on: QueueConnection(queue))
        }
        let reshard = BackgroundThread("reshard") { Result { try cluster.reshard(owned, from: source, to: destination) } }
        var reads = 0
        var wrong: [String] = []
        while !reshard.isFinished || reads < moving.count {
            let member = moving[reads % moving.count]
            let reply = try await web.send(.get, "/v1/members/\(member)/matches?limit=20")
            if reply.status != 200 || reply.matches != Array(expected[member]!.prefix(20)) {
                wrong.append("member \(member): \(reply.status) \(reply.body.prefix(300))")
            }
            reads += 1
        }
        try await onThread { try reshard.result(timeout: .seconds(180)).get() }
        #expect(wrong.isEmpty, "\(wrong.count) of \(reads) reads: \(wrong.prefix(5))")
        print("reshard under load: \(owned) slots moved, \(reads) reads of the moving members")

        let stats = try await onThread { try WorkerChecks.waitForIdleQueue(installation, timeout: .seconds(300)) }
        #expect(stats.dead == 0, "dead letters: \(stats.dead)")
        #expect(worker.isRunning, "\(worker.logTail())")
        let after = try await onThread { try cluster.slotMap() }
        #expect(!after.masterNodes.contains(source) || (0..<HashSlot.count).allSatisfy { after.master(for: HashSlot($0)!) != source })
        try await onThread { try WorkerChecks.expectAllSetsCorrect(installation) }
        try await onThread { worker.terminate() }
    }

    @Test("a set whose last write a failover lost (the replica never got it) is found by the set audit, its answersVersion against MySQL's record, and rebuilt; the shard's sequence going back queues nothing wholesale")
    func writeLostInAFailover() async throws {
        let cluster = try await onThread { try RedisCluster(nodeTimeout: .seconds(2)) }
        let installation = try await onThread { try Installation(memberLimit: 100, standaloneShards: 1, cluster: cluster) }
        let web = try await onThread {
            try WebHarness(installation: installation) {
                $0.scoring.topN = ExactSets.topN
            }
        }
        try await onThread {
            let generator = Generator(core: web.core)
            for member in installation.members { _ = try generator.regenerate(member.id) }
        }
        try await onThread {
            let clusterShard = try #require(installation.clusterShardID)
            let map = try cluster.slotMap()
            // The master that holds the shard's write sequence, and a member whose set it holds.
            let sequenceKey = web.core.scores.configuration.markerKey + ":sequence"
            let victim = try #require(map.master(for: HashSlot(key: sequenceKey)))
            let member = try #require(try Self.membersOnCluster(installation).first { map.master(for: ScoreLayout.slot(of: $0)) == victim })
            let watcher = Maintenance.shardWatcher(WorkerRuntime(core: web.core, settings: .testing()))
            try runOnce(watcher)  // the sequence recorded in MySQL
            let replica = try #require(map.replicas[victim]?.first)
            for node in map.masterNodes {
                let redis = try #require(cluster.server(node)).connect()
                #expect(try redis.send(["WAIT", "1", "5000"]).int == 1)
                redis.close()
            }
            let store = installation.scoreStore()
            defer { store.manager.close() }
            let replicated = try #require(try store.readMetas([member], shard: clusterShard).first ?? nil)

            // The replica hears nothing more from its master: frozen, its replication link cut.
            let replicaServer = try #require(cluster.server(replica))
            replicaServer.freeze()
            let victimServer = try #require(cluster.server(victim))
            let admin = try victimServer.connect()
            _ = try admin.sendChecked(["CLIENT", "KILL", "TYPE", "replica"])
            admin.close()
            // The member changes; the job writes their new set (only the master has it) and MySQL records it,
            // in a later second than the replicated write (sets carry their write time in seconds).
            try poll(until: "the clock to pass the replicated write's second", timeout: .seconds(2), interval: .milliseconds(10)) {
                Int64(Date().timeIntervalSince1970) > replicated.generatedAt
            }
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            let repository = MemberRepository(connection: connection, survey: installation.survey)
            var record = try #require(try repository.member(member))
            record.answers = Array(record.answers.dropFirst(record.answers.count / 2))
            try repository.upsert([record])
            try ExactSets.work(web, [member])
            let written = try #require(try store.readMetas([member], shard: clusterShard).first ?? nil)
            #expect(written.answersVersion != replicated.answersVersion)
            try runOnce(watcher)  // the sequence advances on the master only, and MySQL records it

            // The master dies; the replica, thawed, takes over with the old set.
            victimServer.kill()
            replicaServer.thaw()
            try poll(until: "the replica to take over", timeout: .seconds(60), interval: .milliseconds(100)) {
                (try? cluster.slotMap().master(for: ScoreLayout.slot(of: member))) == replica
            }
            try cluster.waitUntilHealthy(timeout: .seconds(60))
            try poll(until: "the old set to be read from the new master", timeout: .seconds(30), interval: .milliseconds(100)) {
                (try? store.readMetas([member], shard: clusterShard).first ?? nil)?.answersVersion == replicated.answersVersion
            }

            // The watcher sees the sequence go back: one master failed over, the shard did not lose its
            // data, so nothing is queued wholesale (every set the replica holds stays as it is).
            let queue = QueueConnection(try installation.queueServer.connect())
            defer { queue.close() }
            while let job = try WorkQueue().fetch(worker: "drain", on: queue) { try WorkQueue().complete(job, worker: "drain", on: queue) }
            try runOnce(watcher)
            #expect(try WorkQueue().stats(on: queue).waiting.values.reduce(0, +) == 0, "the watcher queued the cluster shard's sets")
            let recorded = try ShardCatalog(connection: try installation.connectMySQL()).sequence(of: clusterShard)
            #expect(recorded == Int64(try #require(try Self.integer(cluster, key: sequenceKey))), "the sequence record follows the new master")

            // The audit finds it (a first run records the snapshot's version) and queues it; the jobs repair.
            let audit = SetAuditState(runtime: WorkerRuntime(core: web.core, settings: .testing(auditSample: 10_000)), quiet: .zero)  // the self-check samples every set
            try audit.run(web.core.sessions.thread())
            try audit.run(web.core.sessions.thread())
            var queued = Set<MemberID>()
            while let job = try WorkQueue().fetch(worker: "audit-test", on: queue) {
                queued.insert(job.member)
                try WorkQueue().complete(job, worker: "audit-test", on: queue)
            }
            #expect(queued.contains(member), "the set the failover took back is queued: \(queued.sorted())")
            try ExactSets.work(web, Array(queued))
            #expect(try store.readMetas([member], shard: clusterShard).first??.answersVersion == written.answersVersion)
        }
        try await onThread { try ExactSets.expectEverySetExact(web) }
    }

    @Test("a whole cluster shard unreachable behaves as a standalone shard down: its members' reads answer 503 with Retry-After, their jobs fail as shard unavailable (which the worker postpones, never buries), other shards are served; then exact pages again")
    func wholeClusterUnreachable() async throws {
        let cluster = try await onThread { try RedisCluster(nodeTimeout: .seconds(2)) }
        let installation = try await onThread { try Installation(memberLimit: 120, standaloneShards: 1, cluster: cluster) }
        let web = try await onThread { try WebHarness(installation: installation, generateFirst: true) }
        let onCluster = try await onThread { try Self.membersOnCluster(installation) }
        let member = try #require(onCluster.first)
        let elsewhere = try #require(installation.members.map(\.id).first { !onCluster.contains($0) })
        let expected = try await Installation.expectedMatchesOffPool(installation.members, survey: installation.survey)
        try await onThread {
            for node in try cluster.slotMap().masterNodes {
                let redis = try #require(cluster.server(node)).connect()
                #expect(try redis.send(["WAIT", "1", "5000"]).int == 1)
                redis.close()
            }
        }

        // Every node hangs (SIGSTOP): connections open, nothing answers, as with a lost network.
        for node in cluster.nodes { node.freeze() }
        for _ in 0..<3 {
            let reply = try await web.send(.get, "/v1/members/\(member)/matches?limit=20")
            #expect(reply.status == 503 && reply.headers[.retryAfter] != nil, "\(reply.status): \(reply.body)")
            #expect(reply.errorCode == "unavailable", "\(reply.body)")
            let served = try await web.send(.get, "/v1/members/\(elsewhere)/matches?limit=20")
            #expect(served.status == 200 && served.matches == Array(expected[elsewhere]!.prefix(20)), "\(served.body)")
        }
        let failure = try await onThread { () -> GenerationFailure? in
            do throws(GenerationFailure) {
                _ = try Generator(core: web.core).process(member, ownSet: .always)
                return nil
            } catch {
                return error
            }
        }
        #expect(failure?.kind == .shardUnavailable, "\(String(describing: failure))")

        for node in cluster.nodes { node.thaw() }
        try await onThread { try cluster.waitUntilHealthy(timeout: .seconds(60)) }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while true {
            let reply = try await web.send(.get, "/v1/members/\(member)/matches?limit=20")
            if reply.status == 200 {
                #expect(reply.matches == Array(expected[member]!.prefix(20)), "\(reply.body)")
                break
            }
            #expect(reply.status == 503, "\(reply.status): \(reply.body)")
            guard clock.now < deadline else {
                Issue.record("still \(reply.status) 60 s after the cluster came back")
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    @Test("the worker and the CLI on a queue that lives on the cluster (KINDRED_QUEUE=redis+cluster://): every set built, the queue idle there, nothing on the standalone queue server")
    func queueOnTheCluster() async throws {
        let cluster = try await onThread { try RedisCluster() }
        let installation = try await onThread { try Installation(memberLimit: 120, standaloneShards: 1, cluster: cluster) }
        // Seeded by a node that does not serve the queue's slot: every queue command is routed.
        let map = try await onThread { try cluster.slotMap() }
        let queueSlot = HashSlot(key: QueueKeys().onCluster.namespace)
        let seed = try #require(map.masterNodes.first { $0 != map.master(for: queueSlot) })
        let address = "redis+cluster://127.0.0.1:\(seed.port)"
        let worker = try await onThread { try WorkerChecks.startWorker(installation, environment: ["KINDRED_QUEUE": address]) }
        defer { worker.terminate() }
        // `kindred enqueue` (the CLI) queues every member on the cluster.
        let ids = installation.members.map { String($0.id) }.joined(separator: "\n") + "\n"
        let enqueue = try await onThread {
            try runProcess(
                try WorkerChecks.binary(), ["enqueue", "--stdin"], environment: installation.environment.merging(["KINDRED_QUEUE": address]) { _, new in new },
                input: ids, timeout: .seconds(60))
        }
        #expect(enqueue.status == 0, "\(enqueue.output)")
        try await onThread { try WorkerChecks.waitForGenerated(installation, atLeast: installation.members.count, worker: worker) }
        let stats = try await onThread { () -> QueueStats in
            let queue = try QueueConnection(address: try QueueAddress(address))
            defer { queue.close() }
            var stats = QueueStats()
            try poll(until: "the cluster queue to be idle", timeout: .seconds(60), interval: .milliseconds(100)) {
                stats = try WorkQueue().stats(on: queue)
                return stats.waiting.values.reduce(0, +) == 0 && stats.processing == 0 && stats.delayed == 0
            }
            return stats
        }
        #expect(stats.dead == 0 && stats.workers == 2, "\(stats)")
        try await onThread { try WorkerChecks.expectAllSetsCorrect(installation) }
        let standalone = try await onThread { () -> Int in
            let redis = try installation.queueServer.connect()
            defer { redis.close() }
            return try redis.sendChecked(["DBSIZE"]).int ?? -1
        }
        #expect(standalone == 0, "the standalone queue server was used")
        #expect(worker.isRunning, "\(worker.logTail())")
        // Stopped off the cooperative pool (the defer's stop is then a no-op).
        try await onThread { worker.terminate() }
    }

    /// An integer key's value, read from the master serving it now.
    static func integer(_ cluster: RedisCluster, key: String) throws -> Int? {
        let node = try #require(try cluster.slotMap().master(for: HashSlot(key: key)))
        let redis = try #require(cluster.server(node)).connect()
        defer { redis.close() }
        return try redis.sendChecked(["GET", key]).string.flatMap(Int.init)
    }
}
