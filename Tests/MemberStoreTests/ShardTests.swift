import Foundation
import MariaDBClient
import KindredSupport
@_spi(Testing) import MemberStore
import Scoring
import TestSupport
import Testing

@Suite("Shards and the member directory", .offCooperativePool)
struct ShardTests {
    @Test("the catalog adds, lists and changes shards, and refuses bad or duplicate addresses and weights")
    func catalog() throws {
        try withStore { connection, _, _ in
            let catalog = ShardCatalog(connection: connection)
            let first = try catalog.add(address: "redis://127.0.0.1:7000", weight: 2, memoryBudget: 4 << 30)
            let second = try catalog.add(address: "redis://Cache-2.example.org:7001")
            #expect(first.state == .active && first.weight == 2 && first.memoryBudget == 4 << 30)
            #expect(second.address.description == "redis://cache-2.example.org:7001" && second.weight == 1)
            #expect(second.memoryBudget == nil && second.id > first.id)

            let duplicate = try #require(throws: MemberStoreError.self) {
                try catalog.add(address: "redis://CACHE-2.example.org:7001")
            }
            #expect(duplicate.code == .duplicateShard)
            let badAddress = try #require(throws: MemberStoreError.self) { try catalog.add(address: "redis://host:99999") }
            #expect(badAddress.code == .invalidShardAddress)
            let badWeight = try #require(throws: MemberStoreError.self) {
                try catalog.add(address: "redis://10.0.0.1:7000", weight: 0)
            }
            #expect(badWeight.code == .invalidShardWeight)

            try catalog.setState(first.id, .draining)
            try catalog.setWeight(second.id, 5)
            let unknown = try #require(throws: MemberStoreError.self) { try catalog.setState(999, .down) }
            #expect(unknown.code == .unknownShard)
            let listed = try catalog.list()
            #expect(listed.map(\.id) == [first.id, second.id])
            #expect(listed.map(\.state) == [.draining, .active])
            #expect(listed.map(\.weight) == [2, 5])
            #expect(listed.allSatisfy { $0.assignedMembers == 0 && $0.createdAt.count == 26 })
        }
    }

    @Test("assignments follow the weights (1 and 3: 1000 and 3000 of 4000), and the catalog counts them")
    func weights() throws {
        try withStore { connection, server, database in
            let catalog = ShardCatalog(connection: connection)
            let light = try catalog.add(address: "redis://10.0.0.1:7000", weight: 1)
            let heavy = try catalog.add(address: "redis://10.0.0.2:7000", weight: 3)
            let directory = SessionDirectory(try server.connect(database: database))
            var counts: [UInt32: Int] = [:]
            for member in MemberID(1)...4000 {
                counts[try directory.assign(member), default: 0] += 1
            }
            #expect(counts[light.id] == 1000 && counts[heavy.id] == 3000)
            #expect(try catalog.list().map(\.assignedMembers) == [1000, 3000])
            #expect(try directory.assign(17) == directory.shard(of: 17), "assigning again returns the same shard")
            directory.clearCache()
            #expect(try directory.shard(of: 17) != nil, "read back from MySQL")
            #expect(try directory.shard(of: 4001) == nil)
            #expect(try directory.members(onShard: light.id).count == 1000)
        }
    }

    @Test("draining and down shards get no new members; members already there keep them; with none active, a clear error")
    func draining() throws {
        try withStore { connection, server, database in
            let catalog = ShardCatalog(connection: connection)
            let a = try catalog.add(address: "redis://10.0.0.1:7000")
            let b = try catalog.add(address: "redis://10.0.0.2:7000")
            let directory = SessionDirectory(try server.connect(database: database))
            #expect(try directory.assign(1) == a.id)
            #expect(try directory.assign(2) == b.id)

            // The directory's view of the loads is fresh (read just now): the
            // write itself must refuse the draining shard.
            try catalog.setState(a.id, .draining)
            for member in MemberID(10)..<60 { #expect(try directory.assign(member) == b.id) }
            #expect(try directory.assign(1) == a.id, "a member on a draining shard keeps it")
            directory.clearCache()
            #expect(try directory.shard(of: 1) == a.id)

            try catalog.setState(b.id, .down)
            let error = try #require(throws: MemberStoreError.self) { try directory.assign(100) }
            #expect(error.code == .noActiveShard)
            #expect(try directory.shard(of: 100) == nil)

            try catalog.setState(a.id, .active)
            #expect(try directory.assign(100) == a.id)
        }
    }

    @Test("a new shard takes the new members until it has caught up; a released member is assigned afresh")
    func newShardAndRelease() throws {
        try withStore { connection, server, database in
            let catalog = ShardCatalog(connection: connection)
            let old = try catalog.add(address: "redis://10.0.0.1:7000")
            let directory = SessionDirectory(try server.connect(database: database))
            for member in MemberID(1)...100 { #expect(try directory.assign(member) == old.id) }
            let new = try catalog.add(address: "redis://10.0.0.2:7000")
            try directory.reloadShards()
            for member in MemberID(101)...200 { #expect(try directory.assign(member) == new.id) }
            #expect(try catalog.list().map(\.assignedMembers) == [100, 100])

            try directory.release(5)
            #expect(try directory.shard(of: 5) == nil)
            #expect(try catalog.list().map(\.assignedMembers) == [99, 100])
            #expect(try directory.assign(5) == old.id, "the emptier shard")
        }
    }

    @Test("two directories on two connections assigning the same members at once agree on every one")
    func racingAssignments() throws {
        let server = try MariaDBServer.shared()
        let database = try server.createDatabase()
        let setup = try server.connect(database: database)
        defer { setup.close() }
        try Migrator.migrate(setup)
        let catalog = ShardCatalog(connection: setup)
        for port in 7000..<7004 { try catalog.add(address: "redis://10.0.0.1:\(port)") }

        let directories = [
            SessionDirectory(try server.connect(database: database)),
            SessionDirectory(try server.connect(database: database)),
        ]
        let results = [Collector<(MemberID, UInt32)>(), Collector<(MemberID, UInt32)>()]
        try onThreads(2) { index in
            for member in MemberID(1)...400 {
                results[index].append((member, try directories[index].assign(member)))
            }
        }
        let first = Dictionary(uniqueKeysWithValues: results[0].all)
        let second = Dictionary(uniqueKeysWithValues: results[1].all)
        #expect(first.count == 400 && first == second)
        #expect(try setup.query("SELECT COUNT(*) FROM member_shards").first?.int(0) == 400)
        for member in MemberID(1)...400 {
            #expect(try setup.query("SELECT shard_id FROM member_shards WHERE member_id = ?", [.uint(UInt64(member))])
                .first?.uint(0) == UInt64(first[member]!))
        }
        let perShard = try catalog.list().map(\.assignedMembers)
        #expect(perShard.reduce(0, +) == 400 && perShard.allSatisfy { (70...130).contains($0) }, "\(perShard)")
    }

    @Test("one directory shared by threads, each with its own session: concurrent assignments of the same members agree")
    func sharedDirectory() throws {
        try withStore { connection, server, database in
            let catalog = ShardCatalog(connection: connection)
            try catalog.add(address: "redis://10.0.0.1:7000")
            try catalog.add(address: "redis://10.0.0.2:7000", weight: 2)
            let directory = ShardDirectory()
            let results = [Collector<UInt32>(), Collector<UInt32>(), Collector<UInt32>()]
            try onThreads(3) { index in
                let session = StoreSession(connection: try server.connect(database: database))
                defer { session.close() }
                for member in MemberID(1)...200 { results[index].append(try directory.assign(member, in: session)) }
            }
            #expect(results[0].all == results[1].all && results[1].all == results[2].all)
            // The threads no longer take turns on one connection: a pick is counted at once, and
            // one undone when another thread wrote the member first, so the split stays near the
            // weights (1:2) within the few picks in flight at a time, not exactly.
            let perShard = try catalog.list().map(\.assignedMembers)
            #expect(perShard.reduce(0, +) == 200 && abs(perShard[1] - 133) <= 6, "\(perShard)")
        }
    }

    @Test("the directory holds no connection: one thread's statement stuck in MySQL does not hold up another thread's look-up")
    func noSharedConnection() throws {
        try withStore { connection, server, database in
            let catalog = ShardCatalog(connection: connection)
            let shard = try catalog.add(address: "redis://10.0.0.1:7000").id
            let directory = ShardDirectory()
            let other = StoreSession(connection: try server.connect(database: database))
            _ = try directory.assign(7, in: other)
            directory.clearCache()
            // A transaction holds member 5's row: an assignment of member 5 waits for its lock.
            let blocker = try server.connect(database: database)
            defer { blocker.close() }
            try blocker.execute("START TRANSACTION")
            try blocker.execute(
                "INSERT INTO member_shards (member_id, shard_id, assigned_at) VALUES (5, ?, UTC_TIMESTAMP(6))", [.uint(UInt64(shard))])
            let stuckConnection = try server.connect(database: database)
            let stuck = BackgroundThread("stuck assignment") { [stuckConnection = UncheckedSendable(stuckConnection)] in
                let session = StoreSession(connection: stuckConnection.value)
                defer { session.close() }
                return Result { try directory.assign(5, in: session) }
            }
            // Wait (bounded) until MySQL reports the assignment waiting for the lock.
            let deadline = ContinuousClock.now + .seconds(20)
            let waiting = "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'INSERT IGNORE INTO member_shards%'"
            while try connection.query(waiting).first?.int(0) == 0 {
                sleepThread(.milliseconds(10))  // a bounded poll: leave the server's cores to the statement
                if ContinuousClock.now >= deadline {
                    Issue.record("the assignment never waited for the row lock: \(String(describing: try? stuck.result(timeout: .zero)))")
                    return
                }
            }
            // Another thread's look-up (not cached: it reads MySQL) answers meanwhile.
            let lookup = BackgroundThread("look-up") { [other = UncheckedSendable(other)] in
                Result { try directory.shard(of: 7, in: other.value) }
            }
            #expect(try lookup.result(timeout: .seconds(10)).get() == shard)
            #expect(!stuck.isFinished, "the stuck assignment is still waiting")
            try blocker.execute("COMMIT")
            #expect(try stuck.result(timeout: .seconds(30)).get() == shard, "it then reads the row the other transaction wrote")
        }
    }
}
