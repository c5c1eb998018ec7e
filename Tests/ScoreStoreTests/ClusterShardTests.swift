import Foundation
import RedisClient
@testable import ScoreStore
import Scoring
import Testing
import TestSupport

/// A shard that is a whole Redis Cluster (three masters, three replicas):
/// every store operation routes each member's keys to the master serving
/// the member's `{id}` slot, and keeps working while slots move and when a
/// master dies.
@Suite("A Redis Cluster as one shard", .serialized, .timeLimit(.minutes(5)), .offCooperativePool)
struct ClusterShardTests {
    static let shared = Result { try RedisCluster() }

    /// A store whose only shard is `cluster`; failovers are waited for up
    /// to a minute (a loaded test machine elects slowly).
    static func store(_ cluster: RedisCluster, buckets: Int = 8) throws -> ScoreStore {
        let seed = cluster.nodes[0]
        let endpoint = try ShardEndpoint(id: 1, url: "redis+cluster://127.0.0.1:\(seed.port)")
        var configuration = ScoreStore.Configuration()
        configuration.layout = ScoreLayout(buckets: buckets)
        configuration.clusterRouting.retryBudget = .seconds(60)
        return ScoreStore(manager: ShardConnectionManager(shards: [endpoint]), configuration: configuration)
    }

    /// Members whose slots cover every master.
    static let members: [MemberID] = Array(1...60)

    @Test("a cluster shard's URL: redis+cluster://, database 0 only, shown as it was given (password redacted)")
    func endpoint() throws {
        let endpoint = try ShardEndpoint(id: 3, url: "redis+cluster://:s3cret@10.0.0.5:7000")
        #expect(endpoint.isCluster && endpoint.port == 7000 && endpoint.address.password == "s3cret")
        #expect(endpoint.url == "redis+cluster://:***@10.0.0.5:7000")
        #expect(!(try ShardEndpoint(id: 3, url: "redis://10.0.0.5:7000")).isCluster)
        #expect(throws: ScoreStoreError.self) { try ShardEndpoint(id: 3, url: "redis+cluster://10.0.0.5:7000/2") }
    }

    @Test("sets of members on every master: written, read, paged, scored, metas, existence, placements, stats, scan, removal")
    func everyOperation() throws {
        let cluster = try Self.shared.get()
        let store = try Self.store(cluster)
        defer { store.manager.close() }
        let map = try cluster.slotMap()
        #expect(Set(Self.members.map { map.master(for: ScoreLayout.slot(of: $0)) }).count == 3, "the members span the masters")

        var written: [MemberID: [Match]] = [:]
        for member in Self.members {
            let matches = rankedMatches(for: member, count: 160, seed: UInt32(member))
            try store.writeSet(member, shard: 1, matches: matches, answersVersion: "s\(member)", limit: 150, complete: false)
            written[member] = matches
        }
        for member in Self.members {
            let set = try #require(try store.readSet(member, shard: 1, cutToLimit: false))
            #expect(set.matches == written[member])
            #expect(set.meta.answersVersion == "s\(member)")
            let page = try #require(try store.readPage(member, shard: 1, offset: 10, limit: 5))
            #expect(page.matches == Array(written[member]![10..<15]))
            let probe = written[member]![42]
            let score = try store.score(member, other: probe.id, shard: 1)
            #expect(score == Int(probe.tenths))
        }
        let metas = try store.readMetas(Self.members + [9_999], shard: 1)
        #expect(metas.prefix(Self.members.count).allSatisfy { $0 != nil } && metas.last! == nil)
        // Watched (as a web backend's cached copies are): the placements below log their changes.
        let reads = try store.readMetasAndChanges(Self.members.map { ($0, metas[Int($0) - 1]) }, shard: 1, watch: true)
        #expect(reads.allSatisfy { $0.changes == [] })
        #expect(try store.existingSets(Self.members + [9_999], shard: 1) == Set(Self.members))

        // Placements into every master's sets at once: a newcomer enters each.
        let placements = Self.members.map { ScoreStore.Placement(target: $0, member: 500_000, tenths: 100, answersVersion: "s\($0)") }
        let results = store.place(placements, limit: 150) { _ in 1 }
        #expect(results.failed == 0 && results.errors.isEmpty, "\(results.errors)")
        #expect(results.count(.entered) == Self.members.count)
        for member in Self.members.prefix(10) {
            #expect(try store.readSet(member, shard: 1)?.matches.contains(Match(id: 500_000, tenths: 100)) == true)
        }
        let changed = try store.readMetasAndChanges(Self.members.map { ($0, metas[Int($0) - 1]) }, shard: 1)
        #expect(changed.allSatisfy { $0.changes?.count == 1 })

        // Shard-wide: the marker, the sequence, the stats and the scan see every master.
        #expect(try store.ensureMarker(shard: 1).token.count == 16)
        #expect(try store.advanceSequence(shard: 1) >= 1)
        let stats = try store.shardStats(shard: 1)
        #expect(stats.keys >= Self.members.count * 9 && stats.usedMemory > 0)
        var owners: [MemberID] = []
        try store.scanSetOwners(shard: 1, pageSize: 7) { owners += $0 }
        #expect(Set(owners).isSuperset(of: Self.members))

        #expect(try store.removeSet(Self.members[0], shard: 1))
        #expect(try store.removeSets(Array(Self.members.dropFirst()), shard: 1) == Self.members.count - 1)
        #expect(try store.existingSets(Self.members, shard: 1).isEmpty)
    }

    @Test("a member's slot moved to another master after the map was read: reads, writes and placements follow the move")
    func movedSlot() throws {
        let cluster = try Self.shared.get()
        let store = try Self.store(cluster, buckets: 4)
        defer { store.manager.close() }
        let member: MemberID = 77
        let matches = rankedMatches(for: member, count: 50)
        try store.writeSet(member, shard: 1, matches: matches, answersVersion: "a", limit: 40, complete: false)  // map read, connection pooled
        let slot = ScoreLayout.slot(of: member)
        let map = try cluster.slotMap()
        let source = try #require(map.master(for: slot))
        let destination = try #require(map.masterNodes.first { $0 != source })
        try cluster.moveSlot(slot, from: source, to: destination)
        defer { try? cluster.moveSlot(slot, from: destination, to: source) }

        #expect(try store.readSet(member, shard: 1, cutToLimit: false)?.matches == matches)
        let results = store.place([ScoreStore.Placement(target: member, member: 600_000, tenths: 100, answersVersion: "a")], limit: 40) { _ in 1 }
        #expect(results.count(.entered) == 1, "\(results.errors)")
        try store.writeSet(member, shard: 1, matches: Array(matches.prefix(45)), answersVersion: "b", limit: 40, complete: false)
        #expect(try store.readMeta(member, shard: 1)?.answersVersion == "b")
        let direct = try #require(cluster.server(destination)).connect()
        defer { direct.close() }
        #expect(try direct.send(["HGET", store.configuration.layout.metaKey(member), "stamp"]).string == "b")
    }

    @Test("a master SIGKILLed: its replica takes over and the store's operations on its members succeed within the retry budget")
    func failover() throws {
        let cluster = try RedisCluster(nodeTimeout: .seconds(2))
        let store = try Self.store(cluster)
        defer { store.manager.close() }
        for member in Self.members {
            try store.writeSet(member, shard: 1, matches: rankedMatches(for: member, count: 30), answersVersion: "s", limit: 20, complete: false)
        }
        let map = try cluster.slotMap()
        let victim = try #require(map.master(for: ScoreLayout.slot(of: Self.members[0])))
        let server = try #require(cluster.server(victim))
        let redis = try server.connect()
        #expect(try redis.send(["WAIT", "1", "5000"]).int == 1)  // the replica has every write
        redis.close()
        server.kill()

        let onVictim = Self.members.filter { map.master(for: ScoreLayout.slot(of: $0)) == victim }
        #expect(!onVictim.isEmpty)
        for member in onVictim {
            #expect(try store.readSet(member, shard: 1)?.matches.count == 20)
        }
        let placements = Self.members.map { ScoreStore.Placement(target: $0, member: 700_000, tenths: 100, answersVersion: "s") }
        let results = store.place(placements, limit: 20) { _ in 1 }
        #expect(results.failed == 0 && results.count(.entered) == Self.members.count, "\(results.errors)")
    }
}
