import Foundation
import RedisClient
@testable import ScoreStore
import Scoring
import Testing
import TestSupport

/// Whole-set writes and reads against real shards.
@Suite("Whole sets", .timeLimit(.minutes(2)), .offCooperativePool)
struct SetTests {
    @Test(arguments: [1, 64])
    func aWrittenSetReadsBackRankedExactlyAsWritten(buckets: Int) throws {
        let shards = try Shards(buckets: buckets)
        let matches = rankedMatches(for: 17, count: 5000)
        let written = try shards.store.writeSet(17, shard: 2, matches: matches, answersVersion: "v7", limit: 5000, generatedAt: 1_790_000_000)
        #expect(written.count == 5000)
        #expect(written.floor == matches.last)
        // A new set's counter starts at a random seed (its identity across removals): one write is one change.
        #expect(written.changes > 1)

        let set = try #require(try shards.store.readSet(17, shard: 2))
        #expect(set.matches == matches)
        #expect(set.corruptEntries == 0)
        #expect(set.meta.answersVersion == "v7")
        #expect(set.meta.generatedAt == 1_790_000_000)
        #expect(set.meta.count == 5000)
        #expect(set.meta.limit == 5000)
        #expect(set.meta.floor == matches.last)
        #expect(set.meta.changes == written.changes && set.meta.written == written.changes)

        // The raw layout is SCORING.md's: decimal ids, one-decimal scores, `other % B`.
        let raw = try shards.raw(2)
        let probe = matches[1234]
        let key = buckets == 1 ? "scores:{17}" : "scores:{17}:\(probe.id % UInt32(buckets))"
        #expect(try raw.send(["HGET", key, String(probe.id)]).string == probe.score)
        #expect(try raw.keys(matching: "scores:{17}*").count == buckets + 1)
        if buckets > 1 {
            #expect(try raw.send(["OBJECT", "ENCODING", key]).string == "listpack")
        }

        // Pages and single pairs.
        let page = try #require(try shards.store.readPage(17, shard: 2, offset: 4990, limit: 20))
        #expect(page.matches == Array(matches[4990...]))
        #expect(page.total == 5000)
        #expect(try shards.store.readPage(17, shard: 2, offset: 6000, limit: 5)?.matches == [])
        #expect(try shards.store.score(17, other: probe.id, shard: 2) == Int(probe.tenths))
        #expect(try shards.store.score(17, other: 17, shard: 2) == nil)
        #expect(try shards.store.score(18, other: probe.id, shard: 2) == nil)
        #expect(try shards.store.readSet(18, shard: 2) == nil)
        #expect(try shards.store.readSet(17, shard: 1) == nil)  // another shard holds nothing
    }

    @Test func aSmallerSetReplacesABiggerOneAndEmptyBucketsGo() throws {
        let shards = try Shards()
        let first = try shards.store.writeSet(5, shard: 1, matches: rankedMatches(for: 5, count: 3000), answersVersion: "a", limit: 3000)
        let small = rankedMatches(for: 5, count: 10, firstID: 900_000)
        let result = try shards.store.writeSet(5, shard: 1, matches: small, answersVersion: "b", limit: 3000)
        #expect(result.floor == nil)  // every candidate: no floor
        #expect(result.changes == first.changes + 1)
        let set = try #require(try shards.store.readSet(5, shard: 1))
        #expect(set.matches == small)
        #expect(set.meta.floor == nil)
        #expect(set.meta.isComplete && !set.meta.isLegacy && !set.meta.needsRefill)
        #expect(set.meta.changes == first.changes + 1)
        // Only the buckets holding the 10 remain, plus the meta.
        let buckets = Set(small.map { $0.id % 64 })
        #expect(try shards.raw(1).keys(matching: "scores:{5}*").count == buckets.count + 1)

        // An empty set is a set (read back empty), unlike no set.
        try shards.store.writeSet(5, shard: 1, matches: [], answersVersion: "c", limit: 3000)
        let empty = try #require(try shards.store.readSet(5, shard: 1))
        #expect(empty.matches.isEmpty)
        #expect(empty.meta.answersVersion == "c")
        #expect(try shards.raw(1).keys(matching: "scores:{5}*") == ["scores:{5}:meta"])
    }

    @Test func unrankedOrOversizedInputIsRejectedAndNothingIsWritten() throws {
        let shards = try Shards()
        let good = rankedMatches(for: 3, count: 10)
        for bad in [Array(good.reversed()), good + [good[9]], good + [Match(id: 3, tenths: 0)]] {
            let error = #expect(throws: ScoreStoreError.self) {
                try shards.store.writeSet(3, shard: 1, matches: bad, answersVersion: "x", limit: 100)
            }
            #expect(error?.code == .invalidArgument)
        }
        // At most N + S + W (S: max(16, N / 10); W: 2S), the largest set.
        #expect(shards.store.configuration.largestSet(forLimit: 9) == 9 + 16 + 32)
        let error = #expect(throws: ScoreStoreError.self) {
            try shards.store.writeSet(3, shard: 1, matches: rankedMatches(for: 3, count: 9 + 16 + 32 + 1), answersVersion: "x", limit: 9, complete: false)
        }
        #expect(error?.code == .invalidArgument)
        #expect(try shards.raw(1).keys(matching: "*").isEmpty)
    }

    @Test func readersSeeOneWholeSetOrTheOtherNeverAMix() throws {
        let shards = try Shards()
        let setA = rankedMatches(for: 42, count: 5000, firstID: 1, seed: 1)
        let setB = rankedMatches(for: 42, count: 5000, firstID: 2501, seed: 2)  // overlaps half of A's ids, other scores
        #expect(setA != setB)
        let seeded = try shards.store.writeSet(42, shard: 3, matches: setA, answersVersion: "A", limit: 5000).changes

        let store = shards.store
        let writes = 40
        let writer = BackgroundThread("writer") { () -> (any Error)? in
            do {
                for round in 0..<writes {
                    try store.writeSet(42, shard: 3, matches: round % 2 == 0 ? setB : setA, answersVersion: round % 2 == 0 ? "B" : "A", limit: 5000)
                }
                return nil
            } catch { return error }
        }
        let reader = BackgroundThread("reader") { () -> (reads: Int, bad: Int, errors: [String]) in
            var reads = 0
            var bad = 0
            var errors: [String] = []
            // Reads until the writer's last write is visible (changes == the first write's + writes).
            while true {
                do {
                    guard let set = try store.readSet(42, shard: 3) else { bad += 1; continue }
                    reads += 1
                    let expected = set.meta.answersVersion == "A" ? setA : setB
                    if set.matches != expected || set.meta.count != 5000 || set.corruptEntries != 0 { bad += 1 }
                    if set.meta.changes == seeded + writes { break }
                } catch {
                    errors.append("\(error)")
                    if errors.count > 5 { break }
                }
            }
            return (reads, bad, errors)
        }
        #expect(try writer.result() == nil)
        let outcome = try reader.result()
        #expect(outcome.errors.isEmpty)
        #expect(outcome.bad == 0)
        #expect(outcome.reads > 1)
        // Nothing temporary is left behind.
        #expect(try shards.raw(3).keys(matching: "*:tmp:*").isEmpty)
    }

    @Test func aWriterThatDiesLeavesTemporaryKeysThatExpire() throws {
        let shards = try Shards()
        try shards.store.writeSet(8, shard: 2, matches: rankedMatches(for: 8, count: 100), answersVersion: "live", limit: 100)
        let raw = try shards.raw(2)
        #expect(try raw.keys(matching: "*:tmp:*").isEmpty)

        // Play a writer that died after its HSETs, before the replace.
        _ = try shards.manager.withConnection(to: 2) { (connection) throws(ScoreStoreError) -> ScoreStore.WriteResult in
            do throws(RedisError) {
                return try shards.store.write(8, on: connection, matches: rankedMatches(for: 8, count: 100, seed: 9), answersVersion: "dead",
                                              limit: 100, complete: false, generatedAt: 0, ttl: .milliseconds(300), replace: false)
            } catch { throw ScoreStoreError(error, shard: 2) }
        }
        let temporary = try raw.keys(matching: "scores:{8}:tmp:*")
        #expect(!temporary.isEmpty)
        for key in temporary {
            let ttl = try raw.send(["PTTL", key]).int ?? -1
            #expect(ttl > 0 && ttl <= 300)
        }
        // The live set is untouched, and the temporary keys expire (Redis
        // expires them actively; bounded wait).
        #expect(try shards.store.readSet(8, shard: 2)?.meta.answersVersion == "live")
        try poll(until: "the dead writer's temporary keys to expire", timeout: .seconds(10)) {
            try raw.keys(matching: "*:tmp:*").isEmpty
        }
        #expect(try shards.store.readSet(8, shard: 2)?.matches == rankedMatches(for: 8, count: 100))
    }

    @Test func aReplaceWhoseTemporaryBucketsExpiredChangesNothing() throws {
        let shards = try Shards()
        let live = rankedMatches(for: 8, count: 100)
        try shards.store.writeSet(8, shard: 2, matches: live, answersVersion: "live", limit: 100)
        let raw = try shards.raw(2)
        // Run the replace script by hand on buckets that are not there.
        var command = RedisCommand("EVAL")
        command.append(Scripts.replace.source)
        command.append(1 + 2 * 64)
        command.append("scores:{8}:meta")
        for bucket in 0..<64 { command.append("scores:{8}:\(bucket)") }
        for bucket in 0..<64 { command.append("scores:{8}:tmp:gone:\(bucket)") }
        for argument in ["64", "late", "0", "1", "100", "", "1000"] { command.append(argument) }
        for bucket in 0..<64 { command.append(bucket == 0 ? 1 : 0) }
        let reply = try raw.send(command)
        #expect(reply.errorKind == "KINDREDTEMP")
        // A bucket written in two HSETs that expired in between: the second
        // recreated it with half its fields. Caught by its count.
        _ = try raw.sendChecked(["HSET", "scores:{8}:tmp:part:0", "64", "5.0"])
        var partial = RedisCommand("EVAL")
        partial.append(Scripts.replace.source)
        partial.append(1 + 2 * 64)
        partial.append("scores:{8}:meta")
        for bucket in 0..<64 { partial.append("scores:{8}:\(bucket)") }
        for bucket in 0..<64 { partial.append("scores:{8}:tmp:part:\(bucket)") }
        for argument in ["64", "late", "0", "2", "100", "", "1"] { partial.append(argument) }  // batches of 1 pair
        for bucket in 0..<64 { partial.append(bucket == 0 ? 2 : 0) }
        #expect(try raw.send(partial).errorKind == "KINDREDTEMP")
        let set = try #require(try shards.store.readSet(8, shard: 2))
        #expect(set.matches == live)
        #expect(set.meta.answersVersion == "live")
    }

    @Test func corruptFieldsAndValuesAreSkippedAndCounted() throws {
        let shards = try Shards()
        let matches = rankedMatches(for: 9, count: 200)
        try shards.store.writeSet(9, shard: 1, matches: matches, answersVersion: "s", limit: 200)
        let raw = try shards.raw(1)
        _ = try raw.sendChecked(["HSET", "scores:{9}:3", "not-an-id", "5.0"])
        _ = try raw.sendChecked(["HSET", "scores:{9}:3", "67", "five"])  // 67 % 64 == 3, value not a score
        _ = try raw.sendChecked(["HSET", "scores:{9}:3", "68", "5.0"])  // wrong bucket (68 % 64 == 4)
        _ = try raw.sendChecked(["HSET", "scores:{9}:3", "0003", "5.0"])  // leading zeros
        _ = try raw.sendChecked(["DEL", "scores:{9}:5"])
        _ = try raw.sendChecked(["SET", "scores:{9}:5", "a string"])  // a bucket of the wrong type
        let set = try #require(try shards.store.readSet(9, shard: 1))
        #expect(set.corruptEntries == 5)
        #expect(set.matches == matches.filter { $0.id % 64 != 5 })
        // One pair with a corrupt value is an error, not a crash.
        let error = #expect(throws: ScoreStoreError.self) { try shards.store.score(9, other: 67, shard: 1) }
        #expect(error?.code == .corruptData)
        #expect(error.map { !"\($0)".contains("67") } == true)
    }
}

@Suite("Batched meta reads", .timeLimit(.minutes(2)), .offCooperativePool)
struct MetaBatchTests {
    @Test func manyMetasInOneRoundTripAreEachMembersAndNilWithoutASet() throws {
        let shards = try Shards()
        for member: MemberID in [3, 8, 21] {
            try shards.store.writeSet(
                member, shard: 1, matches: rankedMatches(for: member, count: Int(member) * 10), answersVersion: "s\(member)",
                limit: 5000, generatedAt: 1_790_000_000 + Int64(member))
        }
        let asked: [MemberID] = [21, 4, 3, 8, 3]
        let metas = try shards.store.readMetas(asked, shard: 1)
        #expect(metas.count == asked.count)
        for (member, meta) in zip(asked, metas) {
            #expect(meta == (try shards.store.readMeta(member, shard: 1)), "member \(member)")
        }
        #expect(metas[0]?.answersVersion == "s21" && metas[0]?.count == 210 && metas[0]?.generatedAt == 1_790_000_021)
        #expect(metas[1] == nil)  // no set
        #expect(try shards.store.readMetas([], shard: 1) == [])
        #expect(try shards.store.readMetas([3], shard: 2) == [nil])  // another shard holds nothing
    }

    @Test func anErrorReplyForOneMemberThrowsAndTheConnectionStaysUsable() throws {
        let shards = try Shards()
        try shards.store.writeSet(5, shard: 1, matches: rankedMatches(for: 5, count: 10), answersVersion: "a", limit: 5000)
        _ = try shards.raw(1).sendChecked(["SET", "scores:{6}:meta", "a string"])  // WRONGTYPE for HGETALL
        let error = #expect(throws: ScoreStoreError.self) { try shards.store.readMetas([5, 6, 7], shard: 1) }
        #expect(error?.isTransportFailure == false)
        // Every reply of the pipeline was read: the next call gets its own.
        #expect(try shards.store.readMetas([5, 7], shard: 1).map { $0?.answersVersion } == ["a", nil])
    }
}

@Suite("Script reloads", .timeLimit(.minutes(2)), .offCooperativePool)
struct BatchAndScriptTests {
    @Test func afterTheScriptCacheIsFlushedEveryScriptIsLoadedAgain() throws {
        let shards = try Shards(count: 1)
        let store = shards.store
        let raw = try shards.raw(1)
        try store.writeSet(1, shard: 1, matches: rankedMatches(for: 1, count: 10), answersVersion: "a", limit: 100)
        #expect(store.place(2, into: 1, tenths: 50, answersVersion: "a", limit: 100, shard: 1).count(.entered) == 1)
        #expect(store.place(2, into: 1, tenths: nil, answersVersion: "a", limit: 100, shard: 1).count(.removed) == 1)
        // The pooled connection believes its scripts are loaded; they are not.
        _ = try raw.sendChecked(["SCRIPT", "FLUSH"])
        try store.writeSet(1, shard: 1, matches: rankedMatches(for: 1, count: 12), answersVersion: "b", limit: 100)
        _ = try raw.sendChecked(["SCRIPT", "FLUSH"])
        #expect(store.place(2, into: 1, tenths: 50, answersVersion: "b", limit: 100, shard: 1).count(.entered) == 1)
        _ = try raw.sendChecked(["SCRIPT", "FLUSH"])
        #expect(store.place(2, into: 1, tenths: nil, answersVersion: "b", limit: 100, shard: 1).count(.removed) == 1)
        let set = try #require(try store.readSet(1, shard: 1))
        #expect(set.matches == rankedMatches(for: 1, count: 12))
        #expect(set.meta.answersVersion == "b")
    }
}
