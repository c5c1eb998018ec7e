import Foundation
import RedisClient
@testable import ScoreStore
import Scoring
import Testing
import TestSupport

/// Reciprocal offers into bounded sets, against real shards.
@Suite("Offers", .timeLimit(.minutes(2)))
struct OfferTests {
    /// N in these tests; slack is max(16, N / 50) = 16.
    let limit = 50
    let slack = 16

    /// Reads `member`'s set and checks the meta's count against the fields.
    func consistentSet(_ shards: Shards, _ member: MemberID) throws -> ScoreStore.StoredSet {
        let set = try #require(try shards.store.readSet(member, shard: Shards.shardOf(member)!, cutToLimit: false))
        #expect(set.meta.count == set.matches.count)
        #expect(set.corruptEntries == 0)
        return set
    }

    @Test func anOfferIntoAMissingSetIsSkippedAndCreatesNothing() throws {
        let shards = try Shards()
        let stats = shards.store.offer(from: 7, entries: [Match(id: 100, tenths: 55)], limit: limit, shardOf: Shards.shardOf)
        #expect(stats.sent == 1)
        #expect(stats.noSet == 1)
        #expect(try shards.raw(Shards.shardOf(100)!).keys(matching: "*").isEmpty)
        // No shard at all: no set, nothing sent.
        let none = shards.store.offer(from: 7, entries: [Match(id: 100, tenths: 55)], limit: limit, shardOf: { _ in nil })
        #expect(none.noSet == 1 && none.sent == 0)
    }

    @Test func offersAddToASetThatIsNotFullAndUpdateOrKeepAnExistingEntry() throws {
        let shards = try Shards()
        let target: MemberID = 101
        let shard = Shards.shardOf(target)!
        let initial = rankedMatches(for: target, count: 10)
        try shards.store.writeSet(target, shard: shard, matches: initial, stamp: "s", limit: limit)

        var stats = shards.store.offer(from: 7, entries: [Match(id: target, tenths: 3)], limit: limit, shardOf: Shards.shardOf)
        #expect(stats.entered == 1 && stats.sent == 1)
        var set = try consistentSet(shards, target)
        #expect(set.matches == (initial + [Match(id: 7, tenths: 3)]).sorted(by: Match.ranksBefore))
        #expect(set.meta.count == 11)
        #expect(set.meta.changes == 2)
        #expect(set.meta.low == Match(id: 7, tenths: 3))  // the new lowest entry
        #expect(set.meta.floor == nil)  // not full

        stats = shards.store.offer(from: 7, entries: [Match(id: target, tenths: 88)], limit: limit, shardOf: Shards.shardOf)
        #expect(stats.updated == 1)
        set = try consistentSet(shards, target)
        #expect(set.matches.contains(Match(id: 7, tenths: 88)))
        #expect(!set.matches.contains(Match(id: 7, tenths: 3)))
        #expect(set.meta.count == 11 && set.meta.changes == 3)

        stats = shards.store.offer(from: 7, entries: [Match(id: target, tenths: 88)], limit: limit, shardOf: Shards.shardOf)
        #expect(stats.unchanged == 1)
        #expect(try consistentSet(shards, target).meta.changes == 3)
    }

    @Test func anOfferBelowAFullSetsFloorIsRefusedThenNeverSentAgain() throws {
        let shards = try Shards()
        let target: MemberID = 102
        let shard = Shards.shardOf(target)!
        // A full set whose lowest entry is 5.0 (the largest id among the 5.0s).
        let full = (0..<limit).map { Match(id: MemberID(1000 + $0), tenths: 50 + $0 % 30) }.sorted(by: Match.ranksBefore)
        try shards.store.writeSet(target, shard: shard, matches: full, stamp: "s", limit: limit)
        #expect(full.last?.tenths == 50)
        shards.store.forgetFloors()  // learn it from the script's reply instead
        let raw = try shards.raw(shard)
        let callsBefore = try raw.commandCalls("evalsha")

        let first = shards.store.offer(from: 7, entries: [Match(id: target, tenths: 30)], limit: limit, shardOf: Shards.shardOf)
        #expect(first.refused == 1 && first.sent == 1)
        #expect(try raw.commandCalls("evalsha") == callsBefore + 1)

        // Known floor: no round trip at all, for anything at or below it
        // (a tie on 5.0 with a larger id than the floor's loses too).
        let loser = MemberID(1000 + limit)
        let second = shards.store.offer(from: 8, entries: [Match(id: target, tenths: 20)], limit: limit, shardOf: Shards.shardOf)
        let tie = shards.store.offer(from: loser, entries: [Match(id: target, tenths: 50)], limit: limit, shardOf: Shards.shardOf)
        #expect(second.skippedByFloor == 1 && second.sent == 0)
        #expect(tie.skippedByFloor == 1 && tie.sent == 0)
        #expect(try raw.commandCalls("evalsha") == callsBefore + 1)
        #expect(try consistentSet(shards, target).matches == full)

        // After the cache's TTL the floor is asked again.
        shards.clock.advance(by: shards.store.configuration.floorCacheTTL)
        let later = shards.store.offer(from: 8, entries: [Match(id: target, tenths: 20)], limit: limit, shardOf: Shards.shardOf)
        #expect(later.refused == 1 && later.sent == 1)
        #expect(try raw.commandCalls("evalsha") == callsBefore + 2)
    }

    @Test func offersAboveTheFloorEnterTheSetStaysBoundedAndTheFloorRises() throws {
        let shards = try Shards()
        let target: MemberID = 103
        let shard = Shards.shardOf(target)!
        let full = (0..<limit).map { Match(id: MemberID(1000 + $0), tenths: 40 + $0 % 20) }.sorted(by: Match.ranksBefore)
        try shards.store.writeSet(target, shard: shard, matches: full, stamp: "s", limit: limit)
        let oldFloor = try #require(full.last)

        var everything = full
        var trimmedTotal = 0
        for index in 0..<40 {
            let offered = Match(id: MemberID(5000 + index), tenths: 45 + index % 50)
            let stats = shards.store.offer(from: offered.id, entries: [Match(id: target, tenths: Int(offered.tenths))],
                                           limit: limit, shardOf: Shards.shardOf)
            everything.append(offered)
            trimmedTotal += stats.trimmed
            #expect(stats.entered + stats.refused + stats.skippedByFloor == 1)
            let set = try consistentSet(shards, target)
            #expect(set.matches.count <= limit + slack)
            #expect(set.matches.count >= limit)
            // Whatever was trimmed or refused, the top N are exactly the top N
            // of everything offered so far.
            let truth = Array(everything.sorted(by: Match.ranksBefore).prefix(limit))
            #expect(Array(set.matches.prefix(limit)) == truth)
            // The floor ranks at or after the lowest entry (so at or after the
            // N-th): refusing what does not beat it never loses a top-N entry.
            // Right after a trim it is exact.
            let floor = try #require(set.meta.floor)
            #expect(!Match.ranksBefore(floor, try #require(set.matches.last)))
            if stats.trimmed > 0 {
                #expect(set.matches.count == limit)
                #expect(floor == set.matches.last)
            }
        }
        #expect(trimmedTotal > 0)
        // What is served is the first N only.
        let served = try #require(try shards.store.readSet(target, shard: shard))
        #expect(served.matches == Array(everything.sorted(by: Match.ranksBefore).prefix(limit)))
        let set = try consistentSet(shards, target)
        let floor = try #require(set.meta.floor)
        #expect(Match.ranksBefore(floor, oldFloor))  // raised
        // A trim leaves exactly N, and the floor is then exact: the lowest entry.
        #expect(set.matches.count < limit + slack)
    }

    @Test func aTrimLeavesExactlyTheTopNAndAnExactFloor() throws {
        let shards = try Shards()
        let target: MemberID = 90
        let shard = Shards.shardOf(target)!
        let full = (0..<limit).map { Match(id: MemberID(1000 + $0), tenths: 10) }  // all tied at 1.0: ids decide
        try shards.store.writeSet(target, shard: shard, matches: full, stamp: "s", limit: limit)
        // A corrupt entry, not counted in the meta: the trim drops it first
        // and makes the count exact again.
        _ = try shards.raw(shard).sendChecked(["HSET", "scores:{90}:\(77 % 64)", "77", "bad"])
        var trimmed = 0
        for index in 0..<(slack + 1) {
            let stats = shards.store.offer(from: MemberID(100 + index), entries: [Match(id: target, tenths: 10)],
                                           limit: limit, shardOf: Shards.shardOf)
            #expect(stats.entered == 1)  // smaller ids beat the tied floor
            trimmed += stats.trimmed
        }
        #expect(trimmed == slack + 2)
        let set = try consistentSet(shards, target)
        let truth = ((100..<(100 + MemberID(slack + 1))).map { Match(id: $0, tenths: 10) } + full).prefix(limit)
        #expect(set.matches == Array(truth))
        #expect(set.meta.floor == truth.last)
    }

    @Test func concurrentOffersKeepASetBoundedAndItsCountExact() throws {
        let shards = try Shards()
        let target: MemberID = 105
        let shard = Shards.shardOf(target)!
        let n = 100
        let slack = shards.store.configuration.slack(forLimit: n)
        let full = rankedMatches(for: target, count: n, firstID: 1)
        try shards.store.writeSet(target, shard: shard, matches: full, stamp: "s", limit: n)
        let store = shards.store
        func offers(from first: MemberID) -> [Match] {
            (0..<1500).map { Match(id: first + MemberID($0), tenths: Int((first + MemberID($0)) &* 2_654_435_761 % 101)) }
        }
        let left = offers(from: 100_000)
        let right = offers(from: 200_000)
        let done = Atomicish()
        let watcher = BackgroundThread("watcher") { () -> Int in
            var worst = 0
            while !done.value {
                if let set = try? store.readSet(target, shard: shard, cutToLimit: false) { worst = max(worst, set.matches.count) }
            }
            return worst
        }
        func run(_ entries: [Match]) -> BackgroundThread<ScoreStore.OfferStats> {
            BackgroundThread("offers") {
                var total = ScoreStore.OfferStats()
                for entry in entries {  // one offer per call: they interleave with the other thread's
                    total = total + store.offer(from: entry.id, entries: [Match(id: target, tenths: Int(entry.tenths))], limit: n, shardOf: Shards.shardOf)
                }
                return total
            }
        }
        let a = run(left)
        let b = run(right)
        let statsA = try a.result()
        let statsB = try b.result()
        done.set()
        let worst = try watcher.result()
        #expect(statsA.failed == 0 && statsB.failed == 0)
        #expect(statsA.entered + statsB.entered > 0)
        #expect(statsA.skippedByFloor + statsB.skippedByFloor > 0)
        #expect(worst <= n + slack)
        let set = try consistentSet(shards, target)
        #expect(set.matches.count <= n + slack)
        // The raw field count agrees with the meta.
        let raw = try shards.raw(shard)
        var fields = 0
        for bucket in 0..<64 { fields += try raw.send(["HLEN", "scores:{\(target)}:\(bucket)"]).int ?? 0 }
        #expect(fields == set.meta.count)
        // Nothing of the true top N was lost to a refusal, a skip or a trim.
        let truth = Array((full + left + right).sorted(by: Match.ranksBefore).prefix(n))
        #expect(Array(set.matches.prefix(n)) == truth)
    }
}

/// A flag set once by one thread and read by another.
final class Atomicish: @unchecked Sendable {
    // @unchecked Sendable: `flag` is only touched under `lock`.
    private let lock = NSLock()
    private var flag = false
    var value: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}
