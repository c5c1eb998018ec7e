import Foundation
@testable import RedisClient
import Testing
import TestSupport

/// ``ClusterConnection`` against a real Redis Cluster: three masters and
/// three replicas started by the test support.
@Suite("Redis Cluster against a real cluster", .serialized, .timeLimit(.minutes(5)), .offCooperativePool)
struct ClusterTests {
    /// One cluster for the tests that do not break it.
    static let shared = Result { try RedisCluster() }

    @Test("the client's hash slots are the server's CLUSTER KEYSLOT, tags included")
    func keySlots() throws {
        let cluster = try Self.shared.get()
        let redis = try cluster.nodes[0].connect()
        defer { redis.close() }
        var random = SystemRandomNumberGenerator()
        var keys = ["", "{", "}", "{}", "a{}b", "{a}{b}", "x{{y}}z", "scores:{42}:meta", "kq:{queue}:ready"]
        for _ in 0..<300 {
            let length = Int.random(in: 1...20, using: &random)
            keys.append(String((0..<length).map { _ in "ab{}:xyz0123456789".randomElement(using: &random)! }))
        }
        for key in keys {
            let server = try redis.send(RedisCommand("CLUSTER", "KEYSLOT", key)).int
            #expect(server == HashSlot(key: key).value, "\(key)")
        }
    }

    @Test("each command goes to its slot's master; a pipeline over every master answers in order")
    func routing() throws {
        let cluster = try Self.shared.get()
        let client = ClusterConnection(configuration: cluster.configuration())
        defer { client.close() }
        let keys = (0..<2000).map { "routing:{\($0)}" }
        let writes = client.pipeline(keys.enumerated().map { (RedisCommand("SET", $0.element, "v\($0.offset)"), HashSlot(key: $0.element)) })
        #expect(writes.allSatisfy { (try? $0.get()) == .status("OK") })
        let map = try #require(client.slotMap)
        #expect(map.coveredSlots == HashSlot.count)
        #expect(Set(client.connectedNodes) == Set(map.masterNodes))
        // Each key is on the master the map names (read there directly, READONLY not involved).
        var direct: [ClusterNode: RedisConnection] = [:]
        defer { for connection in direct.values { connection.close() } }
        for (index, key) in keys.enumerated().filter({ $0.offset % 50 == 0 }) {
            let master = try #require(map.master(for: HashSlot(key: key)))
            if direct[master] == nil { direct[master] = try cluster.server(master)?.connect() }
            #expect(try direct[master]?.send(RedisCommand("GET", key)).string == "v\(index)")
        }
        let reads = client.pipeline(keys.map { (RedisCommand("GET", $0), HashSlot(key: $0)) })
        #expect(reads.enumerated().allSatisfy { (try? $0.element.get().string) == "v\($0.offset)" })
        #expect(try client.send(RedisCommand("GET", "routing:{7}"), key: "routing:{7}").string == "v7")
    }

    @Test("a slot migrated between masters: ASK is followed during the migration (map unchanged), MOVED after it (map updated)")
    func migration() throws {
        let cluster = try Self.shared.get()
        let client = ClusterConnection(configuration: cluster.configuration())
        defer { client.close() }
        let key = "migrating:{slot}"
        let slot = HashSlot(key: key)
        #expect(try client.send(RedisCommand("SET", key, "before"), slot: slot) == .status("OK"))
        let map = try #require(client.slotMap)
        let source = try #require(map.master(for: slot))
        let destination = try #require(map.masterNodes.first { $0 != source })
        let src = try #require(cluster.server(source)).connect()
        let dst = try #require(cluster.server(destination)).connect()
        defer { src.close(); dst.close() }

        // Other keys in the slot (from other tests) stay behind until the migration finishes.
        try cluster.startMigration(slot, from: source, to: destination, keys: [key])
        // Migrating: the source no longer has the key and answers ASK; the client asks the destination.
        #expect(try src.send(RedisCommand("GET", key)).errorKind == "ASK")
        #expect(try client.send(RedisCommand("GET", key), slot: slot).string == "before")
        #expect(client.slotMap?.master(for: slot) == source)

        try cluster.finishMigration(slot, from: source, to: destination)
        // Migrated: the source answers MOVED; the client follows and learns the slot's new master.
        #expect(try client.send(RedisCommand("SET", key, "after"), slot: slot) == .status("OK"))
        #expect(client.slotMap?.master(for: slot) == destination)
        #expect(try dst.send(RedisCommand("GET", key)).string == "after")
        // And back, so the shared cluster ends as it started.
        try cluster.moveSlot(slot, from: destination, to: source)
        #expect(try client.send(RedisCommand("GET", key), slot: slot).string == "after")
        #expect(client.slotMap?.master(for: slot) == source)
    }

    @Test("a master SIGKILLed: its replica takes over and the client's commands to those slots succeed within the retry budget")
    func failover() throws {
        let cluster = try RedisCluster(nodeTimeout: .seconds(2))
        let client = ClusterConnection(configuration: cluster.configuration(routing: .init(retryBudget: .seconds(60))))
        defer { client.close() }
        let keys = (0..<300).map { "failover:{\($0)}" }
        let writes = client.pipeline(keys.map { (RedisCommand("SET", $0, "kept"), HashSlot(key: $0)) })
        #expect(writes.allSatisfy { (try? $0.get()) == .status("OK") })
        let map = try #require(client.slotMap)
        let victim = try #require(map.master(for: HashSlot(key: keys[0])))
        // Every write reached the victim's replica before the kill (replication is asynchronous).
        let victimServer = try #require(cluster.server(victim))
        let redis = try victimServer.connect()
        #expect(try redis.send(RedisCommand("WAIT", "1", "5000")).int == 1)
        redis.close()
        victimServer.kill()

        let onVictim = keys.filter { map.master(for: HashSlot(key: $0)) == victim }
        #expect(!onVictim.isEmpty)
        for key in onVictim.prefix(20) {
            #expect(try client.send(RedisCommand("GET", key), key: key).string == "kept")
        }
        let after = try #require(client.slotMap)
        #expect(after.master(for: HashSlot(key: keys[0])) != victim)
        #expect(after.master(for: HashSlot(key: keys[0])).map { map.replicas[victim]?.contains($0) ?? false } == true, "\(map.replicas) \(after.masterNodes) victim \(victim)")
        // The rest of the cluster was served all along.
        let reads = client.pipeline(keys.map { (RedisCommand("GET", $0), HashSlot(key: $0)) })
        #expect(reads.allSatisfy { (try? $0.get().string) == "kept" })
    }
}
