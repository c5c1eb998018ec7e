import RedisClient
@testable import ScoreStore
import Scoring
import TestSupport
import Testing

@Suite("Shards with credentials and a database number, and the marker written with the first set", .offCooperativePool)
struct ManagedShardTests {
    @Test("an ACL user's shard in database 2: sets land in database 2, also after the server dropped the connections")
    func aclUserAndDatabase() throws {
        let server = try RedisServer(options: .init(password: "admin-pw"))
        let admin = try server.connect()
        _ = try admin.sendChecked(["ACL", "SETUSER", "kindred", "on", ">sh@rd/pw", "~*", "+@all"])
        let address = try RedisURL("redis://kindred:sh%40rd%2Fpw@127.0.0.1:\(server.port)/2")
        let manager = ShardConnectionManager(shards: [ShardEndpoint(id: 1, address: address)])
        defer { manager.close() }
        let store = ScoreStore(manager: manager)
        let matches = rankedMatches(for: 7, count: 100)
        try store.writeSet(7, shard: 1, matches: matches, answersVersion: "a", limit: 100)
        #expect(try admin.sendChecked(["DBSIZE"]).int == 0, "nothing in database 0")
        _ = try admin.sendChecked(["CLIENT", "KILL", "USER", "kindred"])
        #expect(try store.readSet(7, shard: 1)?.matches == matches, "read on a fresh connection: AUTH and SELECT again")
        try store.writeSet(8, shard: 1, matches: matches.filter { $0.id != 8 }, answersVersion: "a", limit: 100)
        _ = try admin.sendChecked(["SELECT", "2"])
        #expect(try admin.sendChecked(["EXISTS", "scores:{7}:meta", "scores:{8}:meta", "kindred:marker"]).int == 3)
        #expect(manager.shards.first?.description == "shard 1 (redis://kindred:***@127.0.0.1:\(server.port)/2)")
    }

    @Test("a wrong shard password is a connection failure naming the server and user, never the password")
    func wrongPassword() throws {
        let server = try RedisServer(options: .init(password: "right-pw"))
        let manager = ShardConnectionManager(shards: [
            ShardEndpoint(id: 4, address: RedisURL(host: server.host, port: Int(server.port), user: "default", password: "wrong-pw-77", database: 1))
        ])
        defer { manager.close() }
        let error = #expect(throws: ScoreStoreError.self) {
            try ScoreStore(manager: manager).writeSet(1, shard: 4, matches: [], answersVersion: "a", limit: 10, complete: true)
        }
        #expect(error?.code == .connectionFailed)
        #expect(error?.underlying?.code == .authenticationFailed)
        #expect(error?.message.contains("authentication failed for redis://default@127.0.0.1:\(server.port)/1") == true, "\(error?.message ?? "")")
        #expect(error.map { "\($0)" }?.contains("wrong-pw-77") == false)
    }

    @Test("the first set written to a shard writes its marker, once per store: a later process finds it, a later loss stays visible")
    func markerWithTheFirstSet() throws {
        let shards = try Shards(count: 1)
        let writer = shards.store
        try writer.writeSet(1, shard: 1, matches: rankedMatches(for: 1, count: 10), answersVersion: "a", limit: 10)
        let token = try #require(try writer.checkMarker(shard: 1))
        // Another process (the worker's watcher) starting now: nothing to report.
        let watcher = ScoreStore(manager: ShardConnectionManager(shards: shards.manager.shards))
        defer { watcher.manager.close() }
        let status = try watcher.ensureMarker(shard: 1)
        #expect(!status.wasMissing && status.token == token)
        // The shard loses its data while the writer keeps writing: it does not put the marker back.
        _ = try shards.raw(1).sendChecked(["FLUSHALL"])
        try writer.writeSet(2, shard: 1, matches: rankedMatches(for: 2, count: 10), answersVersion: "a", limit: 10)
        #expect(try watcher.checkMarker(shard: 1) == nil)
        #expect(try watcher.ensureMarker(shard: 1).wasMissing, "the watcher notices the loss")
    }
}
