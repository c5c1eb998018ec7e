import Foundation
import RedisClient
@testable import ScoreStore
import Scoring
import Synthetic
import Testing
import TestSupport

/// Placements (``Scripts/place``) against real shards: a stored set stays
/// the exact prefix of its member's ranking down to its floor.
@Suite("Placements", .timeLimit(.minutes(3)), .offCooperativePool)
struct PlacementTests {
    /// The set as stored, with its meta's count checked against the entries.
    func consistentSet(_ shards: Shards, _ member: MemberID) throws -> ScoreStore.StoredSet {
        let set = try #require(try shards.store.readSet(member, shard: Shards.shardOf(member)!, cutToLimit: false))
        #expect(set.meta.count == set.matches.count, "meta count \(set.meta.count), entries \(set.matches.count)")
        #expect(set.corruptEntries == 0)
        return set
    }

    @Test func aPlacementIntoAMissingSetFindsNoneAndCreatesNothing() throws {
        let shards = try Shards()
        let stats = shards.store.place(9, into: 3, tenths: 50, limit: 10, shard: 1)
        #expect(stats.count(.noSet) == 1)
        #expect(try shards.raw(1).keys(matching: "*").isEmpty)
    }

    @Test("each whole write has its own identity in the meta, even with the same answersVersion in the same second; placements keep it")
    func wholeWritesAreTold() throws {
        let shards = try Shards()
        let target: MemberID = 7
        let shard = Shards.shardOf(target)!
        let matches = rankedMatches(for: target, count: 5)
        try shards.store.writeSet(target, shard: shard, matches: matches, answersVersion: "s", limit: 10, complete: true, generatedAt: 100)
        let first = try #require(try shards.store.readMeta(target, shard: shard))
        #expect(first.written == first.changes && first.written > 0)
        #expect(shards.store.place(900, into: target, tenths: 40, limit: 10, shard: shard).count(.entered) == 1)
        let placed = try #require(try shards.store.readMeta(target, shard: shard))
        #expect(placed.written == first.written && placed.changes > first.changes)
        try shards.store.writeSet(target, shard: shard, matches: matches, answersVersion: "s", limit: 10, complete: true, generatedAt: 100)
        let second = try #require(try shards.store.readMeta(target, shard: shard))
        #expect(second.answersVersion == first.answersVersion && second.generatedAt == first.generatedAt)
        #expect(second.written == second.changes && second.written > placed.changes)
    }

    @Test func aSetWithEveryCandidateTakesAnyNewCandidateUpdatesAndRemoves() throws {
        let shards = try Shards()
        let target: MemberID = 7
        let shard = Shards.shardOf(target)!
        let matches = rankedMatches(for: target, count: 5)
        let written = try shards.store.writeSet(target, shard: shard, matches: matches, answersVersion: "s", limit: 10, complete: true).changes
        #expect(shards.store.place(900, into: target, tenths: 0, limit: 10, shard: shard).count(.entered) == 1)
        // No reader watches the set: the same score again is told as an update (no HGET).
        #expect(shards.store.place(900, into: target, tenths: 0, limit: 10, shard: shard).count(.updated) == 1)
        #expect(shards.store.place(900, into: target, tenths: 77, limit: 10, shard: shard).count(.updated) == 1)
        // Watched, it is told as unchanged (the change log needs the old score anyway) and logs nothing.
        _ = try shards.store.readMeta(target, shard: shard, since: nil, watch: true)
        let before = try #require(try shards.store.readMeta(target, shard: shard))
        #expect(shards.store.place(900, into: target, tenths: 77, limit: 10, shard: shard).count(.unchanged) == 1)
        #expect(try shards.store.readMeta(target, shard: shard)?.changes == before.changes)
        #expect(shards.store.place(900, into: target, tenths: 78, limit: 10, shard: shard).count(.updated) == 1)
        let removed = shards.store.place(matches[0].id, into: target, tenths: nil, limit: 10, shard: shard)
        #expect(removed.count(.removed) == 1)
        // Every candidate is still there: removing one needs no refill.
        #expect(removed.replies[0]?.needsRefill(limit: 10) == false)
        #expect(shards.store.place(matches[0].id, into: target, tenths: nil, limit: 10, shard: shard).count(.absent) == 1)
        let set = try consistentSet(shards, target)
        let truth = (Array(matches.dropFirst()) + [Match(id: 900, tenths: 78)]).sorted(by: Match.ranksBefore)
        #expect(set.matches == truth)
        #expect(set.meta.isComplete)
        #expect(set.meta.changes == written + 5)  // enter, three updates, remove; unchanged and absent change nothing
    }

    @Test func aSetWithAFloorTakesOnlyWhatRanksAtOrAboveItAndDropsWhatFallsBelow() throws {
        let shards = try Shards()
        let target: MemberID = 8
        let shard = Shards.shardOf(target)!
        let full = rankedMatches(for: target, count: 20, firstID: 1000)
        try shards.store.writeSet(target, shard: shard, matches: full, answersVersion: "s", limit: 20, complete: false)
        let floor = try #require(full.last)
        // Below the floor: not entered. Tied with a larger id: ranks after the floor, not entered.
        #expect(shards.store.place(50_000, into: target, tenths: Int(floor.tenths), limit: 20, shard: shard).count(.absent) == 1)
        if floor.tenths > 0 {
            #expect(shards.store.place(5, into: target, tenths: Int(floor.tenths) - 1, limit: 20, shard: shard).count(.absent) == 1)
        }
        // Tied with a smaller id: ranks before the floor, so it belongs.
        #expect(shards.store.place(5, into: target, tenths: Int(floor.tenths), limit: 20, shard: shard).count(.entered) == 1)
        // An entry whose new score falls below the floor leaves.
        let top = full[0]
        if floor.tenths > 0 {
            let down = shards.store.place(top.id, into: target, tenths: Int(floor.tenths) - 1, limit: 20, shard: shard)
            #expect(down.count(.removed) == 1)
        }
        let set = try consistentSet(shards, target)
        #expect(set.meta.floor == floor)  // the floor stays where it was written
        #expect(!set.matches.contains { $0.id == 50_000 })
        #expect(set.matches.contains { $0.id == 5 })
    }

    @Test func aSetCutBelowNAsksForARefill() throws {
        let shards = try Shards()
        let target: MemberID = 9
        let shard = Shards.shardOf(target)!
        let n = 10
        let stored = rankedMatches(for: target, count: n + 16, firstID: 1000)  // N + slack
        try shards.store.writeSet(target, shard: shard, matches: stored, answersVersion: "s", limit: n, complete: false)
        var refill = false
        for (index, match) in stored.prefix(17).enumerated() {
            let reply = try #require(shards.store.place(match.id, into: target, tenths: nil, limit: n, shard: shard).replies[0])
            #expect(reply.outcome == .removed)
            // N + 16 entries: the 17th removal leaves N - 1.
            #expect(reply.needsRefill(limit: n) == (index == 16))
            refill = refill || reply.needsRefill(limit: n)
        }
        #expect(refill)
        #expect(try consistentSet(shards, target).meta.needsRefill)
    }

    @Test func aPlacementComputedForAnotherStampIsRefusedAndChangesNothing() throws {
        let shards = try Shards()
        let target: MemberID = 10
        let shard = Shards.shardOf(target)!
        let written = try shards.store.writeSet(
            target, shard: shard, matches: rankedMatches(for: target, count: 3), answersVersion: "new", limit: 10, complete: true
        ).changes
        let stale = shards.store.place(77, into: target, tenths: 90, answersVersion: "old", limit: 10, shard: shard)
        #expect(stale.count(.stale) == 1)
        let set = try consistentSet(shards, target)
        #expect(!set.matches.contains { $0.id == 77 })
        #expect(set.meta.changes == written)
    }

    @Test func aSetWrittenBeforeFloorsWereKeptIsReportedForARebuild() throws {
        let shards = try Shards()
        let target: MemberID = 11
        let shard = Shards.shardOf(target)!
        try shards.store.writeSet(target, shard: shard, matches: rankedMatches(for: target, count: 3), answersVersion: "s", limit: 10, complete: true)
        // The meta as the previous version wrote it: `low`, no `floor`.
        let raw = try shards.raw(shard)
        _ = try raw.sendChecked(["HDEL", "scores:{\(target)}:meta", "floor"])
        _ = try raw.sendChecked(["HSET", "scores:{\(target)}:meta", "low", "10:5"])
        #expect(shards.store.place(77, into: target, tenths: 90, limit: 10, shard: shard).count(.legacy) == 1)
        #expect(try shards.store.readMeta(target, shard: shard)?.isLegacy == true)
    }

    /// A trim whose cut takes every entry at its level: the new floor is the
    /// lowest entry kept above it, which among ties is the largest id.
    @Test func aTrimThatTakesAWholeLevelLeavesTheLowestKeptEntryAsTheFloor() throws {
        let shards = try Shards()
        let target: MemberID = 13
        let shard = Shards.shardOf(target)!
        let n = 20
        let slack = shards.store.configuration.slack(forLimit: n)
        let window = shards.store.configuration.trimWindow(forLimit: n)
        // N + S entries at 9.0 (ids 1000 ...), every candidate (no floor).
        let written = (0..<(n + slack)).map { Match(id: MemberID(1000 + $0), tenths: 90) }
        try shards.store.writeSet(target, shard: shard, matches: written, answersVersion: "s", limit: n, complete: true)
        // W + 1 entries at 1.0: the last makes N + S + W + 1 and the trim
        // takes exactly those W + 1, a whole level.
        var last: ScoreStore.PlacementReply?
        for index in 0...window {
            last = shards.store.place(MemberID(100 + index), into: target, tenths: 10, limit: n, shard: shard).replies[0]
        }
        #expect(last?.trimmed == window + 1)
        #expect(last?.floor == Match(id: MemberID(1000 + n + slack - 1), tenths: 90))
        let set = try consistentSet(shards, target)
        #expect(set.matches == written)
        #expect(set.meta.floor == written.last)
    }

    @Test("a trim drops unparsable values first: with more of them than the excess it drops nothing else; with fewer, the lowest valid entries make up the rest")
    func aTrimDropsUnparsableValuesFirst() throws {
        let shards = try Shards()
        let n = 20
        let slack = shards.store.configuration.slack(forLimit: n)
        let window = shards.store.configuration.trimWindow(forLimit: n)
        let layout = shards.store.configuration.layout
        // `corrupted` of the written entries get values no score parses from;
        // the placement that makes N + S + W + 1 trims.
        #expect(window + 2 <= n + slack)
        for (target, corrupted) in [(MemberID(21), window + 2), (MemberID(24), 6)] {
            let shard = Shards.shardOf(target)!
            let written = rankedMatches(for: target, count: n + slack, firstID: 1000)
            try shards.store.writeSet(target, shard: shard, matches: written, answersVersion: "s", limit: n, complete: false)
            let redis = try shards.server(shard).connect()
            defer { redis.close() }
            // Spread over the ranking: the first, then every few.
            let broken = Array(stride(from: 0, to: written.count, by: max(1, written.count / corrupted)).prefix(corrupted).map { written[$0] })
            #expect(broken.count == corrupted)
            for (index, entry) in broken.enumerated() {
                _ = try redis.sendChecked(["HSET", layout.liveKey(target, bucket: layout.bucket(of: entry.id)), String(entry.id), ["x", "", "11.5", "-1", "nan", "inf"][index % 6]])
            }
            var entered: [Match] = []
            var last: ScoreStore.PlacementReply?
            // Every new entry ranks above the written floor: everyone enters.
            for index in 0...window {
                let match = Match(id: MemberID(100 + index), tenths: 100)
                last = try #require(shards.store.place(match.id, into: target, tenths: 100, limit: n, shard: shard).replies[0])
                entered.append(match)
            }
            // Past N + S + W by one: the unparsable go, and as many of the
            // lowest valid entries as it takes to come back to N + S (none
            // when the unparsable alone are more than the excess).
            let excess = window + 1
            #expect(last?.trimmed == max(corrupted, excess), "target \(target)")
            let valid = written.filter { entry in !broken.contains { $0.id == entry.id } }
            let kept = valid.count + entered.count - max(0, excess - corrupted)
            #expect(kept == (corrupted > excess ? n + slack - (corrupted - excess) : n + slack))
            let truth = Array((valid + entered).sorted(by: Match.ranksBefore).prefix(kept))
            let set = try consistentSet(shards, target)
            #expect(set.matches == truth, "target \(target)")
            #expect(set.meta.floor == truth.last, "target \(target)")
        }
    }

    @Test func growthPastTheTrimWindowTrimsBackToNPlusSlackWithAnExactFloor() throws {
        let shards = try Shards()
        let target: MemberID = 12
        let shard = Shards.shardOf(target)!
        let n = 20
        let slack = shards.store.configuration.slack(forLimit: n)
        let window = shards.store.configuration.trimWindow(forLimit: n)
        #expect(window > slack)
        let written = rankedMatches(for: target, count: n + slack, firstID: 1000)
        try shards.store.writeSet(target, shard: shard, matches: written, answersVersion: "s", limit: n, complete: true)
        // Every candidate is stored, so everyone enters; the one that makes
        // N + S + W + 1 trims W + 1 (and not before).
        var entered: [Match] = []
        var trimmed = 0
        for index in 0...window {
            let match = Match(id: MemberID(100 + index), tenths: (index * 37) % 101)
            let reply = try #require(shards.store.place(match.id, into: target, tenths: Int(match.tenths), limit: n, shard: shard).replies[0])
            #expect(reply.outcome == .entered)
            entered.append(match)
            #expect(reply.trimmed == (index == window ? window + 1 : 0))
            trimmed += reply.trimmed
        }
        #expect(trimmed == window + 1)
        let truth = Array((written + entered).sorted(by: Match.ranksBefore).prefix(n + slack))
        let set = try consistentSet(shards, target)
        #expect(set.matches == truth)
        #expect(set.meta.floor == truth.last)
        #expect(!set.meta.isComplete)
    }

    /// Random placements (enter, update, leave) against a model of the
    /// ranking: after each step the set is exactly the ranking's prefix down
    /// to the floor, and its first N are the ranking's first N while it
    /// holds at least N.
    @Test(arguments: [UInt64(1), 2, 3])
    func randomPlacementsKeepTheSetTheExactPrefixOfTheRanking(seed: UInt64) throws {
        let shards = try Shards(buckets: 4)
        let target: MemberID = 13
        let shard = Shards.shardOf(target)!
        let n = 16
        var random = SplitMix64(seed: seed)
        // The model: every candidate's score.
        var candidates: [MemberID: Int] = [:]
        for id in MemberID(1000)..<MemberID(1080) { candidates[id] = Int(random.next() % 101) }
        func ranking() -> [Match] { candidates.map { Match(id: $0.key, tenths: $0.value) }.sorted(by: Match.ranksBefore) }
        let stored = n + shards.store.configuration.slack(forLimit: n)
        try shards.store.writeSet(target, shard: shard, matches: Array(ranking().prefix(stored)), answersVersion: "s", limit: n, complete: false)
        var refills = 0
        for _ in 0..<400 {
            let id = MemberID(1000 + random.next() % 100)  // some are new candidates
            let tenths: Int? = random.next() % 2 == 0 ? nil : Int(random.next() % 101)
            candidates[id] = tenths
            let reply = try #require(shards.store.place(id, into: target, tenths: tenths, limit: n, shard: shard).replies[0])
            let set = try consistentSet(shards, target)
            let floorKey = set.meta.floor.map { UInt64(100 - Int($0.tenths)) << 32 | UInt64($0.id) } ?? .max
            let prefix = ranking().filter { UInt64(100 - Int($0.tenths)) << 32 | UInt64($0.id) <= floorKey }
            #expect(set.matches == prefix)
            if reply.needsRefill(limit: n) {
                // A refill is a rebuild from the ranking.
                refills += 1
                try shards.store.writeSet(target, shard: shard, matches: Array(ranking().prefix(stored)), answersVersion: "s", limit: n, complete: ranking().count <= stored)
            } else {
                #expect(Array(set.matches.prefix(n)) == Array(ranking().prefix(n)))
            }
        }
        #expect(refills > 0)
    }

    /// Placements go to a standalone shard ``ScoreStore/placementsPerCall``
    /// per call (``Scripts/placeMany``): a job's placements in one `place`
    /// end exactly as the same placements made one call each, in order, with
    /// the same answers, the same sets, metas and change logs (trims, stale
    /// answers versions, removals and several placements into one set within a call
    /// included).
    @Test(arguments: [UInt64(1), 2])
    func placementsInOneCallEndAsPlacementsOneByOne(seed: UInt64) throws {
        let batched = try Shards(buckets: 4)
        let single = try Shards(buckets: 4)
        let n = 12
        let slack = batched.store.configuration.slack(forLimit: n)
        let targets = (MemberID(1)...MemberID(9)).map { $0 }
        var random = SplitMix64(seed: seed)
        for target in targets {
            let matches = rankedMatches(for: target, count: n + slack, firstID: 1000)
            for shards in [batched, single] {
                try shards.store.writeSet(target, shard: Shards.shardOf(target)!, matches: matches, answersVersion: "s", limit: n, complete: false)
                // Watched, so that placements log their changes (compared below); the last target is not.
                if target != targets.last {
                    _ = try shards.store.readMeta(target, shard: Shards.shardOf(target)!, since: nil, watch: true)
                }
            }
        }
        let placements = (0..<700).map { _ in
            ScoreStore.Placement(
                // Many high scores, so sets grow past N + S + W and trim.
                target: targets[Int(random.next() % UInt64(targets.count))], member: MemberID(1000 + random.next() % 150),
                tenths: random.next() % 4 == 0 ? nil : Int(random.next() % 2 == 0 ? 70 + random.next() % 31 : random.next() % 101),
                answersVersion: random.next() % 20 == 0 ? "other" : "s")
        }
        let together = batched.store.place(placements, limit: n, shardOf: Shards.shardOf)
        #expect(together.failed == 0 && together.errors.isEmpty, "\(together.errors)")
        let oneByOne = placements.map { single.store.place([$0], limit: n, shardOf: Shards.shardOf).replies[0] }
        func comparable(_ reply: ScoreStore.PlacementReply?) -> [Int] {
            guard let reply else { return [] }
            return [reply.outcome.rawValue, reply.count, reply.floor.map { Int($0.tenths) } ?? -1, reply.floor.map { Int($0.id) } ?? 0, reply.trimmed]
        }
        let firstDifference = placements.indices.first { comparable(together.replies[$0]) != comparable(oneByOne[$0]) }
        #expect(firstDifference == nil, "placement \(firstDifference ?? 0): \(firstDifference.map { comparable(together.replies[$0]) } ?? []) in one call, \(firstDifference.map { comparable(oneByOne[$0]) } ?? []) one by one")
        #expect(together.replies.contains { ($0?.trimmed ?? 0) > 0 }, "no placement trimmed a set")
        for outcome in [ScoreStore.PlacementOutcome.entered, .updated, .absent, .removed, .stale] {
            #expect(together.count(outcome) > 0, "no placement was \(outcome.name)")
        }
        /// A change log with each entry's `changes` and `written` as the distance from the write.
        func log(_ shards: Shards, _ target: MemberID, written: Int) throws -> [String] {
            let raw = try shards.raw(Shards.shardOf(target)!)
            defer { raw.close() }
            let entries = try raw.sendChecked(["LRANGE", "scores:{\(target)}:log", "0", "-1"]).array ?? []
            return entries.compactMap(\.string).map { entry in
                var words = entry.split(separator: " ").map(String.init)
                if words.count > 2, let changes = Int(words[0]), Int(words[1]) == written {
                    words[0] = String(changes - written)
                    words[1] = "W"
                }
                return words.joined(separator: " ")
            }
        }
        for target in targets {
            let a = try consistentSet(batched, target)
            let b = try consistentSet(single, target)
            #expect(a.matches == b.matches && a.meta.count == b.meta.count && a.meta.floor == b.meta.floor, "member \(target)")
            #expect(a.meta.changes - a.meta.written == b.meta.changes - b.meta.written, "member \(target)")
            let entries = try log(batched, target, written: a.meta.written)
            #expect(entries == (try log(single, target, written: b.meta.written)), "member \(target)")
            #expect(entries.isEmpty == (target == targets.last), "member \(target): \(entries.count) log entries")
        }
    }

    @Test func concurrentPlacementsKeepASetBoundedAndItsCountExact() throws {
        let shards = try Shards()
        let target: MemberID = 105
        let shard = Shards.shardOf(target)!
        let n = 100
        let slack = shards.store.configuration.slack(forLimit: n)
        let full = rankedMatches(for: target, count: n + slack, firstID: 1)
        try shards.store.writeSet(target, shard: shard, matches: full, answersVersion: "s", limit: n, complete: true)
        let store = shards.store
        func placements(from first: MemberID) -> [Match] {
            (0..<1500).map { Match(id: first + MemberID($0), tenths: Int((first + MemberID($0)) &* 2_654_435_761 % 101)) }
        }
        let left = placements(from: 100_000)
        let right = placements(from: 200_000)
        let done = Atomicish()
        let watcher = BackgroundThread("watcher") { () -> Int in
            var worst = 0
            while !done.value {
                if let set = try? store.readSet(target, shard: shard, cutToLimit: false) { worst = max(worst, set.matches.count) }
            }
            return worst
        }
        func run(_ entries: [Match]) -> BackgroundThread<[ScoreStore.PlacementResults]> {
            BackgroundThread("placements") {
                entries.map { entry in  // one placement per call: they interleave with the other thread's
                    store.place(entry.id, into: target, tenths: Int(entry.tenths), limit: n, shard: shard)
                }
            }
        }
        let a = run(left)
        let b = run(right)
        let results = try a.result() + b.result()
        done.set()
        let worst = try watcher.result()
        #expect(results.allSatisfy { $0.failed == 0 })
        #expect(results.reduce(0) { $0 + $1.count(.entered) } > 0)
        #expect(results.reduce(0) { $0 + $1.count(.absent) } > 0)
        let largest = shards.store.configuration.largestSet(forLimit: n)
        #expect(worst <= largest)
        let set = try consistentSet(shards, target)
        #expect(set.matches.count <= largest)
        // The raw field count agrees with the meta.
        let raw = try shards.raw(shard)
        var fields = 0
        for bucket in 0..<64 { fields += try raw.send(["HLEN", "scores:{\(target)}:\(bucket)"]).int ?? 0 }
        #expect(fields == set.meta.count)
        // The set is exactly the ranking's prefix down to its floor.
        let floorKey = set.meta.floor.map { UInt64(100 - Int($0.tenths)) << 32 | UInt64($0.id) } ?? .max
        let truth = (full + left + right).sorted(by: Match.ranksBefore).filter { UInt64(100 - Int($0.tenths)) << 32 | UInt64($0.id) <= floorKey }
        #expect(set.matches == truth)
        #expect(set.matches.count >= n)
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
