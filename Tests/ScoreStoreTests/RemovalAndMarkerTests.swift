import Foundation
import RedisClient
@testable import ScoreStore
import Scoring
import Testing
import TestSupport

@Suite("Removal, marker, shard stats", .timeLimit(.minutes(2)), .offCooperativePool)
struct RemovalAndMarkerTests {
    @Test func placingAMemberOutOfEverySetKeepsEachCountExact() throws {
        let shards = try Shards()
        let leaving: MemberID = 500
        let targets: [MemberID] = (1...12).map { MemberID($0) }  // on all three shards
        var written: [MemberID: Int] = [:]
        for target in targets {
            let matches = (rankedMatches(for: target, count: 20, firstID: 1000) + [Match(id: leaving, tenths: 70)]).sorted(by: Match.ranksBefore)
            written[target] = try shards.store.writeSet(target, shard: Shards.shardOf(target)!, matches: matches, answersVersion: "s", limit: 100).changes
        }
        let removals = (targets + [13]).map { ScoreStore.Placement(target: $0, member: leaving, tenths: nil, answersVersion: "s") }
        let stats = shards.store.place(removals, limit: 100, shardOf: Shards.shardOf)  // 13 has no set
        #expect(stats.count(.removed) == 12)
        #expect(stats.count(.noSet) == 1)
        #expect(stats.failed == 0)
        for target in targets {
            let set = try #require(try shards.store.readSet(target, shard: Shards.shardOf(target)!))
            #expect(!set.matches.contains { $0.id == leaving })
            #expect(set.meta.count == 20 && set.matches.count == 20)
            #expect(set.meta.changes == written[target]! + 1)
        }
        #expect(try shards.raw(Shards.shardOf(13)!).keys(matching: "scores:{13}*").isEmpty)  // nothing created
        // Again: nothing left to remove, nothing changes.
        let again = shards.store.place(Array(removals.prefix(12)), limit: 100, shardOf: Shards.shardOf)
        #expect(again.count(.removed) == 0 && again.count(.absent) == 12)
        #expect(try shards.store.readSet(1, shard: Shards.shardOf(1)!)?.meta.changes == written[1]! + 1)
    }

    @Test func removingAWholeSetRemovesEveryKey() throws {
        let shards = try Shards()
        try shards.store.writeSet(21, shard: 1, matches: rankedMatches(for: 21, count: 3000), answersVersion: "s", limit: 5000)
        try shards.store.writeSet(22, shard: 1, matches: rankedMatches(for: 22, count: 10), answersVersion: "s", limit: 5000)
        #expect(try shards.store.removeSet(21, shard: 1))
        #expect(try shards.store.readSet(21, shard: 1) == nil)
        let raw = try shards.raw(1)
        #expect(try raw.keys(matching: "scores:{21}*").isEmpty)
        #expect(try !raw.keys(matching: "scores:{22}*").isEmpty)  // the neighbour stays
        #expect(try shards.store.removeSet(21, shard: 1) == false)
        // Placements into the removed set find no set.
        #expect(shards.store.place(9, into: 21, tenths: 50, limit: 5000, shard: 1).count(.noSet) == 1)
    }

    @Test func existingSetsNamesExactlyTheMembersWithASet() throws {
        let shards = try Shards()
        for member: MemberID in [31, 33, 35] {
            try shards.store.writeSet(member, shard: 1, matches: rankedMatches(for: member, count: 5), answersVersion: "s", limit: 10)
        }
        let asked = (MemberID(30)...36).map { $0 } + (MemberID(1000)..<MemberID(3500)).map { $0 }  // several batches
        #expect(try shards.store.existingSets(asked, shard: 1) == [31, 33, 35])
        #expect(try shards.store.removeSet(33, shard: 1))
        #expect(try shards.store.existingSets([31, 33, 35], shard: 1) == [31, 35])
    }

    @Test func theMarkerIsMissingAfterTheShardComesBackEmpty() throws {
        let shards = try Shards()
        let first = try shards.store.ensureMarker(shard: 2)
        #expect(first.wasMissing)
        #expect(first.token.count == 16)
        let second = try shards.store.ensureMarker(shard: 2)
        #expect(!second.wasMissing)
        #expect(second.token == first.token)
        #expect(try shards.store.checkMarker(shard: 2) == first.token)
        #expect(try shards.store.checkMarker(shard: 1) == nil)

        try shards.server(2).restart(empty: true)
        #expect(try shards.store.checkMarker(shard: 2) == nil)
        let third = try shards.store.ensureMarker(shard: 2)
        #expect(third.wasMissing)
        #expect(third.token != first.token)
    }

    @Test func aShardKeepingItsDataKeepsItsMarker() throws {
        let shards = try Shards(count: 1)
        let server = try RedisServer(options: .init(saveOnShutdown: true))
        let manager = ShardConnectionManager(shards: [ShardEndpoint(id: 1, host: server.host, port: Int(server.port))])
        let store = ScoreStore(manager: manager)
        let marker = try store.ensureMarker(shard: 1)
        try server.restart(empty: false)
        #expect(try store.checkMarker(shard: 1) == marker.token)
        #expect(try store.ensureMarker(shard: 1).wasMissing == false)
        _ = shards
    }

    @Test func shardStatsCountKeysAndMemory() throws {
        let shards = try Shards()
        let empty = try shards.store.shardStats(shard: 3)
        #expect(empty.keys == 0)
        #expect(empty.usedMemory > 0)
        try shards.store.writeSet(3, shard: 3, matches: rankedMatches(for: 3, count: 5000), answersVersion: "s", limit: 5000)
        let full = try shards.store.shardStats(shard: 3)
        #expect(full.keys == 66, "64 buckets, the meta and the marker written with the first set")
        #expect(full.usedMemory > empty.usedMemory + 50_000)
    }
}
