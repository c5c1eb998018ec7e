import Foundation
import KindredCore
@testable import KindredTestKit
import MariaDBClient
@_spi(Testing) import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Testing
import TestSupport

@Suite("kindred shards add / remove / list against real servers", .offCooperativePool)
struct ShardAdministrationTests {
    /// A migrated database of its own on the shared MariaDB.
    func withCatalog<T>(_ body: (MariaDBConnection, ShardAdministration) throws -> T) throws -> T {
        let server = try MariaDBServer.shared()
        let database = try server.createDatabase()
        let connection = try server.connect(database: database)
        defer { connection.close() }
        try Migrator.migrate(connection)
        return try body(connection, ShardAdministration(session: StoreSession(connection: connection)))
    }

    @Test("add PINGs with AUTH and SELECT, stores the password, prints it as ***; a wrong password is refused without repeating it")
    func addChecksTheShard() throws {
        let redis = try RedisServer(options: .init(password: "admin-pw"))
        _ = try redis.connect().sendChecked(["ACL", "SETUSER", "kindred", "on", ">sh@rd-pw", "~*", "+@all"])
        try withCatalog { connection, admin in
            let wrong = "redis://kindred:not-the-pw@127.0.0.1:\(redis.port)/2"
            let refused = #expect(throws: ShardAdministrationError.self) { try admin.add(wrong) }
            #expect(refused?.code == .unreachable)
            #expect(refused?.message.contains("authentication failed for redis://kindred@127.0.0.1:\(redis.port)/2") == true, "\(refused?.message ?? "")")
            #expect(refused?.message.contains("not-the-pw") == false)
            #expect(try ShardCatalog(connection: connection).list().isEmpty, "nothing recorded")

            let added = try admin.add("redis://kindred:sh%40rd-pw@127.0.0.1:\(redis.port)/2", weight: 3)
            #expect(added.unreachable == nil)
            #expect(added.shard.address.description == "redis://kindred:***@127.0.0.1:\(redis.port)/2")
            let stored = try connection.query("SELECT address FROM shards WHERE id = ?", [.uint(UInt64(added.shard.id))]).first?.string(0)
            #expect(stored == "redis://kindred:sh%40rd-pw@127.0.0.1:\(redis.port)/2", "the row keeps the password for every program")

            let listing = try #require(try admin.list().first)
            #expect(listing.reachable && listing.keys == 0 && listing.url == "redis://kindred:***@127.0.0.1:\(redis.port)/2")
        }
    }

    @Test("the same server and database is refused by name or by resolved address, naming the shard; another database is another shard")
    func duplicates() throws {
        let redis = try RedisServer()
        try withCatalog { _, admin in
            let first = try admin.add("redis://127.0.0.1:\(redis.port)").shard
            for text in ["redis://localhost:\(redis.port)", "redis://localhost:\(redis.port)/0", "redis://:other@127.0.0.1:\(redis.port)"] {
                let error = #expect(throws: MemberStoreError.self) { try admin.add(text, allowUnreachable: true) }
                #expect(error?.code == .duplicateShard)
                #expect(error?.message.contains("shard \(first.id) (redis://127.0.0.1:\(redis.port))") == true, "\(error?.message ?? "")")
                #expect(error?.message.contains("other") == false)
            }
            let second = try admin.add("redis://localhost:\(redis.port)/1").shard
            #expect(second.address.database == 1)
        }
    }

    @Test("a shard that is down is refused unless --allow-unreachable")
    func unreachable() throws {
        let redis = try RedisServer()
        let port = redis.port
        redis.kill()
        try withCatalog { _, admin in
            let error = #expect(throws: ShardAdministrationError.self) { try admin.add("redis://127.0.0.1:\(port)") }
            #expect(error?.message.contains("--allow-unreachable") == true)
            let added = try admin.add("redis://127.0.0.1:\(port)", allowUnreachable: true)
            #expect(added.unreachable != nil)
            #expect(added.shard.state == .down, "no member is assigned to it until it is activated")
            let listing = try #require(try admin.list().first)
            #expect(!listing.reachable && listing.keys == nil && listing.error != nil)
        }
    }

    @Test("remove refuses a shard with members or sets, naming how many, and removes an empty one")
    func remove() throws {
        let redis = try RedisServer()
        let other = try RedisServer()
        try withCatalog { connection, admin in
            let server = try MariaDBServer.shared()
            let shard = try admin.add("redis://127.0.0.1:\(redis.port)").shard
            let directory = try SessionDirectory(configuration: connection.configuration)
            for member in MemberID(1)...3 { _ = try directory.assign(member) }
            let busy = #expect(throws: MemberStoreError.self) { try admin.remove(shard.id) }
            #expect(busy?.code == .shardNotEmpty)
            #expect(busy?.message.contains("3 member(s) assigned") == true, "\(busy?.message ?? "")")
            _ = server

            // Members moved away, but two sets still on the shard.
            try ShardCatalog(connection: connection).setState(shard.id, .draining)
            _ = try admin.add("redis://127.0.0.1:\(other.port)")
            for member in MemberID(1)...3 { try directory.release(member) }
            let store = ScoreStore(manager: ShardConnectionManager(shards: [ShardEndpoint(id: shard.id, host: "127.0.0.1", port: Int(redis.port))]))
            defer { store.manager.close() }
            for member in MemberID(1)...2 {
                try store.writeSet(member, shard: shard.id, matches: [Match(id: 9, tenths: 50)], answersVersion: "s", limit: 10, complete: true)
            }
            let holding = #expect(throws: MemberStoreError.self) { try admin.remove(shard.id) }
            #expect(holding?.message.contains("still holds 2 set(s)") == true, "\(holding?.message ?? "")")

            for member in MemberID(1)...2 { _ = try store.removeSet(member, shard: shard.id) }
            let removed = try admin.remove(shard.id)
            #expect(removed.id == shard.id)
            #expect(try ShardCatalog(connection: connection).shard(shard.id) == nil)
            let unknown = #expect(throws: MemberStoreError.self) { try admin.remove(shard.id) }
            #expect(unknown?.code == .unknownShard)

            // A shard that cannot be reached is removed only when asked to.
            let down = try admin.add("redis://127.0.0.1:\(other.port)/1").shard
            other.kill()
            let unchecked = #expect(throws: ShardAdministrationError.self) { try admin.remove(down.id) }
            #expect(unchecked?.code == .unreachable)
            _ = try admin.remove(down.id, allowUnreachable: true)
        }
    }

    @Test("list --json has the documented field names, the password redacted")
    func json() throws {
        let redis = try RedisServer(options: .init(password: "json-secret"))
        try withCatalog { _, admin in
            _ = try admin.add("redis://:json-secret@127.0.0.1:\(redis.port)/3", memoryBudget: 1 << 30)
            let text = try ShardAdministration.json(try admin.list())
            #expect(!text.contains("json-secret"))
            let objects = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
            let object = try #require(objects.first)
            #expect(Set(object.keys) == [
                "id", "url", "state", "weight", "members", "memory_budget", "created_at", "reachable", "keys", "used_memory", "error",
                "nodes",
            ], "every field, null included")
            #expect(object["error"] is NSNull && object["nodes"] is NSNull)
            #expect(object["url"] as? String == "redis://:***@127.0.0.1:\(redis.port)/3")
            #expect(object["state"] as? String == "active" && object["reachable"] as? Bool == true)
            #expect(object["memory_budget"] as? Int == 1 << 30)
        }
    }

    @Test("the kindred binary: shards add, list, list --json and remove never print the password; errors exit non-zero")
    func commandLine() throws {
        let redis = try RedisServer(options: .init(password: "cli-s3cret"))
        let server = try MariaDBServer.shared()
        let database = try server.createDatabase()
        let connection = try server.connect(database: database)
        try Migrator.migrate(connection)
        connection.close()
        let environment = ["KINDRED_MYSQL": server.url(database: database)]
        func kindred(_ arguments: String..., shardURL: String? = nil, input: String? = nil) throws -> (Int32, String) {
            var environment = environment
            environment["KINDRED_SHARD_URL"] = shardURL
            let run = try runProcess(try WorkerChecks.binary(), arguments, environment: environment, input: input, timeout: .seconds(120))
            return (run.status, run.output)
        }
        // A password on the command line is refused, and not repeated.
        let (argvStatus, argvOutput) = try kindred("shards", "add", "redis://:cli-s3cret@127.0.0.1:\(redis.port)/4")
        #expect(argvStatus != 0 && argvOutput.contains("KINDRED_SHARD_URL") && !argvOutput.contains("cli-s3cret"), "\(argvOutput)")
        let (badStatus, badOutput) = try kindred("shards", "add", shardURL: "redis://:wrong-one@127.0.0.1:\(redis.port)/4")
        #expect(badStatus != 0 && badOutput.contains("authentication failed") && !badOutput.contains("wrong-one"), "\(badOutput)")
        let (addStatus, added) = try kindred("shards", "add", shardURL: "redis://:cli-s3cret@127.0.0.1:\(redis.port)/4")
        #expect(addStatus == 0 && added.contains("redis://:***@127.0.0.1:\(redis.port)/4"), "\(added)")
        let (_, table) = try kindred("shards", "list")
        let (jsonStatus, json) = try kindred("shards", "list", "--json")
        #expect(jsonStatus == 0 && json.hasPrefix("[{") && json.contains("\"url\":\"redis://:***@127.0.0.1:\(redis.port)/4\""), "\(json)")
        let (removeStatus, removed) = try kindred("shards", "remove", "1")
        #expect(removeStatus == 0, "\(removed)")
        // The same shard again, its URL on standard input.
        let (stdinStatus, viaStdin) = try kindred("shards", "add", "-", input: "\nredis://:cli-s3cret@127.0.0.1:\(redis.port)/4\n")
        #expect(stdinStatus == 0 && viaStdin.contains("redis://:***@127.0.0.1:\(redis.port)/4"), "\(viaStdin)")
        for output in [added, table, json, removed, viaStdin] { #expect(!output.contains("cli-s3cret"), "\(output)") }
    }

    @Test("a Redis Cluster is one shard: added by a node (--cluster), listed with its masters and replicas, keys summed; the wrong kind of address is refused")
    func cluster() throws {
        let cluster = try RedisCluster()
        let standalone = try RedisServer()
        let seed = cluster.nodes[0].port
        try withCatalog { _, admin in
            let asPlain = #expect(throws: ShardAdministrationError.self) { try admin.add("redis://127.0.0.1:\(seed)") }
            #expect(asPlain?.description.contains("--cluster") == true, "\(String(describing: asPlain))")
            let asCluster = #expect(throws: ShardAdministrationError.self) { try admin.add("redis+cluster://127.0.0.1:\(standalone.port)") }
            #expect(asCluster?.description.contains("not in cluster mode") == true, "\(String(describing: asCluster))")
            #expect(throws: MemberStoreError.self) { try admin.add("redis+cluster://127.0.0.1:\(seed)/2") }

            let added = try admin.add("redis+cluster://127.0.0.1:\(seed)")
            #expect(added.unreachable == nil && added.shard.address.isCluster)
            #expect(added.shard.address.description == "redis+cluster://127.0.0.1:\(seed)")
            let listing = try #require(try admin.list().first)
            #expect(listing.reachable && listing.url == "redis+cluster://127.0.0.1:\(seed)")
            let nodes = try #require(listing.nodes)
            #expect(nodes.masters.count == 3 && nodes.replicas.count == 3)
            #expect(Set(nodes.masters + nodes.replicas) == Set(cluster.nodes.map { "127.0.0.1:\($0.port)" }))
            // Keys summed over the masters: one key written to each master's slots.
            var client: ClusterConnection? = ClusterConnection(configuration: cluster.configuration())
            for key in ["a", "b", "c", "d", "e", "f"] { _ = try client?.send(RedisCommand("SET", "probe:\(key)", "1"), key: "probe:\(key)") }
            client = nil
            #expect(try admin.list().first?.keys ?? 0 >= 6)
        }
        // The same through the kindred binary, in a catalog of its own.
        let server = try MariaDBServer.shared()
        let database = try server.createDatabase()
        let connection = try server.connect(database: database)
        try Migrator.migrate(connection)
        connection.close()
        func kindred(_ arguments: String...) throws -> (Int32, String) {
            let run = try runProcess(
                try WorkerChecks.binary(), arguments, environment: ["KINDRED_MYSQL": server.url(database: database)],
                timeout: .seconds(120))
            return (run.status, run.output)
        }
        let (secretStatus, secret) = try kindred("shards", "add", "redis+cluster://:pw-on-argv@127.0.0.1:\(seed)")
        #expect(secretStatus != 0 && secret.contains("KINDRED_SHARD_URL") && !secret.contains("pw-on-argv"), "\(secret)")
        let (addStatus, added) = try kindred("shards", "add", "--cluster", "redis://127.0.0.1:\(seed)")
        #expect(addStatus == 0 && added.contains("redis+cluster://127.0.0.1:\(seed)"), "\(added)")
        let (listStatus, table) = try kindred("shards", "list")
        #expect(listStatus == 0 && table.contains("cluster: masters 127.0.0.1:"), "\(table)")
    }
}
