import Foundation
import Hummingbird
import MariaDBClient
import MemberStore
import RedisClient
import Scoring
import ScoreStore
import Testing
import TestSupport
import WorkQueue

/// A Redis Cluster as one shard beside standalone ones, under a real
/// `kindred worker`: every set right, and still right after a master was
/// SIGKILLed while the worker rewrote every set.
@Suite("A cluster shard end to end", .serialized, .timeLimit(.minutes(10)))
struct ClusterShardEndToEndTests {
    @Test("the worker builds every set on a cluster shard and a standalone one; a master killed mid-run loses nothing")
    func workerOnACluster() async throws {
        try await onThread("clusterEndToEnd") {
            let cluster = try RedisCluster(nodeTimeout: .seconds(2))
            let installation = try Installation(memberLimit: 300, standaloneShards: 1, cluster: cluster)
            try installation.enqueueAll()
            let worker = try WorkerProcessTests.startWorker(installation)
            defer { worker.terminate() }
            try WorkerProcessTests.waitForGenerated(installation, atLeast: installation.members.count, worker: worker)
            _ = try WorkerProcessTests.waitForIdleQueue(installation)
            try WorkerProcessTests.expectAllSetsCorrect(installation)

            // Members live on both shards, and the cluster's sets on all its masters.
            let connection = try installation.connectMySQL()
            let directory = ShardDirectory(connection: try SerializedConnection(configuration: installation.mysqlConfiguration))
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
            try WorkQueue().enqueue(installation.members.map(\.id), priority: .interactive, on: queue)
            try #require(cluster.server(victim)).kill()
            let stats = try WorkerProcessTests.waitForIdleQueue(installation, timeout: .seconds(300))
            #expect(stats.dead == 0, "dead letters: \(stats.dead)")
            #expect(worker.isRunning, "\(worker.logTail())")
            try WorkerProcessTests.expectAllSetsCorrect(installation)
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
            let directory = ShardDirectory(connection: try SerializedConnection(configuration: installation.mysqlConfiguration))
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
        let expected = try Installation.expectedMatches(installation.members, survey: installation.survey)
        let before = try await web.send(.get, "/v1/members/\(member)/matches?limit=20")
        #expect(before.status == 200 && before.matches == Array(expected[member]!.prefix(20)), "\(before.body)")

        try #require(cluster.server(victim)).kill()
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
}
