import Foundation
import RedisClient
@testable import ScoreStore
import Scoring
import Testing
import TestSupport

/// A set's change log (`scores:{X}:log`): what placements append, how long
/// it is kept, when it goes, and what ``ScoreStore/readMeta(_:shard:since:)``
/// makes of it.
@Suite("Change log", .timeLimit(.minutes(3)), .offCooperativePool)
struct ChangeLogTests {
    /// A reader's watch mark on the set (``ScoreStore/Configuration/watchSeconds``):
    /// placements log its changes from now on.
    func watch(_ shards: Shards, _ member: MemberID) throws {
        _ = try shards.store.readMeta(member, shard: Shards.shardOf(member)!, since: nil, watch: true)
    }

    /// The log's raw entries.
    func log(_ shards: Shards, _ member: MemberID) throws -> [String] {
        let raw = try shards.raw(Shards.shardOf(member)!)
        defer { raw.close() }
        return (try raw.sendChecked(["LRANGE", "scores:{\(member)}:log", "0", "-1"]).array ?? []).compactMap(\.string)
    }

    @Test("every placement that changes a set appends one entry with the new counter and the write's identity; the others append nothing")
    func entries() throws {
        let shards = try Shards()
        let target: MemberID = 7
        let shard = Shards.shardOf(target)!
        let matches = rankedMatches(for: target, count: 5)
        let written = try shards.store.writeSet(target, shard: shard, matches: matches, answersVersion: "s", limit: 10, complete: true).changes
        let w = written
        try watch(shards, target)
        #expect(try log(shards, target).isEmpty)
        _ = shards.store.place(900, into: target, tenths: 42, limit: 10, shard: shard)  // entered
        _ = shards.store.place(900, into: target, tenths: 42, limit: 10, shard: shard)  // unchanged
        _ = shards.store.place(900, into: target, tenths: 100, limit: 10, shard: shard)  // updated
        _ = shards.store.place(901, into: target, tenths: nil, limit: 10, shard: shard)  // absent
        _ = shards.store.place(902, into: target, tenths: 50, answersVersion: "old", limit: 10, shard: shard)  // stale
        _ = shards.store.place(matches[0].id, into: target, tenths: nil, limit: 10, shard: shard)  // removed
        let entries = try log(shards, target)
        #expect(
            entries == [
                "\(w + 1) \(w) set 900 42 -1", "\(w + 2) \(w) set 900 100 42", "\(w + 3) \(w) del \(matches[0].id) \(matches[0].tenths)",
            ])
        #expect(entries.compactMap(ScoreStore.SetChange.parse) == [
            ScoreStore.SetChange(changes: w + 1, written: w, member: 900, tenths: 42, previous: nil),
            ScoreStore.SetChange(changes: w + 2, written: w, member: 900, tenths: 100, previous: 42),
            ScoreStore.SetChange(changes: w + 3, written: w, member: matches[0].id, tenths: nil, previous: Int(matches[0].tenths)),
        ])
        #expect(try shards.store.readMeta(target, shard: shard)?.changes == w + 3)
    }

    @Test("a trim rides on the entry that caused it, with the new floor; the log keeps the last L to L + L/4 entries")
    func trimsAndCap() throws {
        let shards = try Shards(configureStore: {
            $0.changeLogLength = 8
            $0.trimWindowSlacks = 1
        })
        let target: MemberID = 8
        let shard = Shards.shardOf(target)!
        // N = 20, slack 16, trim window 16: written with 36, trimmed once it grows past 52.
        let full = rankedMatches(for: target, count: 36, firstID: 1000)
        try shards.store.writeSet(target, shard: shard, matches: full, answersVersion: "s", limit: 20, complete: false)
        try watch(shards, target)
        var trims = 0
        for id in 1...17 {
            let reply = shards.store.place(MemberID(100 + id), into: target, tenths: 100, limit: 20, shard: shard).replies[0]
            #expect(reply?.outcome == .entered)
            if let reply, reply.trimmed > 0 {
                trims += 1
                let last = try #require(try log(shards, target).last.flatMap(ScoreStore.SetChange.parse))
                #expect(last.member == MemberID(100 + id) && last.trimmedTo == reply.floor && reply.floor != nil)
            }
        }
        #expect(trims == 1)
        // 17 entries: trimmed back to 8 when it reached 11 (L + L/4 = 10 exceeded), and again at 14 and 17.
        let entries = try log(shards, target)
        #expect(entries.count == 8)
        let meta = try #require(try shards.store.readMeta(target, shard: shard))
        let counters = entries.compactMap(ScoreStore.SetChange.parse).map { $0.changes }
        #expect(counters == Array((meta.changes - 7)...meta.changes))
        // Never fewer than L entries once L changes were made, never more than L + L/4.
        _ = shards.store.place(200, into: target, tenths: 100, limit: 20, shard: shard)
        #expect(try log(shards, target).count == 9)
    }

    @Test("readMeta(since:) gives exactly the changes after a copy; more than L behind, another whole write or no copy: none")
    func changesSince() throws {
        let shards = try Shards(configureStore: { $0.changeLogLength = 8 })
        let target: MemberID = 9
        let shard = Shards.shardOf(target)!
        let store = shards.store
        try store.writeSet(target, shard: shard, matches: rankedMatches(for: target, count: 5), answersVersion: "s", limit: 10, complete: true)
        try watch(shards, target)
        let copy = try #require(try store.readMeta(target, shard: shard))
        // Nothing changed: the copy is current.
        #expect(try store.readMeta(target, shard: shard, since: copy) == ScoreStore.MetaRead(meta: copy, changes: []))
        // No copy: the meta alone.
        #expect(try store.readMeta(target, shard: shard, since: nil) == ScoreStore.MetaRead(meta: copy, changes: nil as [ScoreStore.SetChange]?))
        for id in 1...3 { _ = store.place(MemberID(100 + id), into: target, tenths: 10 * id, limit: 10, shard: shard) }
        let read = try store.readMeta(target, shard: shard, since: copy)
        #expect(read.meta?.changes == copy.changes + 3)
        let changes = try #require(read.changes)
        #expect(changes.map { $0.member } == [101, 102, 103])
        #expect(changes.map { $0.changes } == [copy.changes + 1, copy.changes + 2, copy.changes + 3])
        // Batched, in order, with and without copies, and a member without a set.
        let asked: [(member: MemberID, since: ScoreStore.SetMeta?)] = [(target, copy), (target, nil), (12, nil), (15, copy)]
        let batch = try store.readMetasAndChanges(asked, shard: shard)
        let metas: [ScoreStore.SetMeta?] = batch.map { $0.meta }
        #expect(metas == [read.meta, read.meta, nil, nil])
        #expect(batch[0].changes == read.changes && batch[1].changes == nil && batch[3].changes == nil)
        // Exactly L behind: still there; L + 1: the log no longer reaches the copy.
        for id in 4...8 { _ = store.place(MemberID(100 + id), into: target, tenths: 50, limit: 10, shard: shard) }
        #expect(try store.readMeta(target, shard: shard, since: copy).changes?.count == 8)
        _ = store.place(109, into: target, tenths: 50, limit: 10, shard: shard)
        let behind = try store.readMeta(target, shard: shard, since: copy)
        #expect(behind.meta?.changes == copy.changes + 9 && behind.changes == nil)
        // A whole write in between: another identity, and the log is gone with the old write.
        let recent = try #require(try store.readMeta(target, shard: shard))
        try store.writeSet(target, shard: shard, matches: rankedMatches(for: target, count: 5), answersVersion: "s", limit: 10, complete: true)
        #expect(try log(shards, target).isEmpty)
        _ = store.place(1, into: target, tenths: 99, limit: 10, shard: shard)
        #expect(try log(shards, target).count == 1, "a whole write keeps the set's watch mark")
        let rewritten = try store.readMeta(target, shard: shard, since: recent)
        #expect(rewritten.meta?.written != recent.written && rewritten.changes == nil)
    }

    @Test("the log goes with its set: removal, eviction (many at once); a set removed and written again never takes an old copy forward")
    func lifetime() throws {
        let shards = try Shards()
        let store = shards.store
        let members: [MemberID] = [3, 6, 9]  // one shard (3 % 3 + 1 = 1)
        let shard = Shards.shardOf(3)!
        for member in members {
            try store.writeSet(member, shard: shard, matches: rankedMatches(for: member, count: 5), answersVersion: "s", limit: 10, complete: true, generatedAt: 100)
            try watch(shards, member)
            _ = store.place(900, into: member, tenths: 50, limit: 10, shard: shard)
        }
        let raw = try shards.raw(shard)
        defer { raw.close() }
        #expect(try raw.keys(matching: "scores:{*}:log").count == 3)
        let copy = try #require(try store.readMeta(3, shard: shard))
        #expect(try store.removeSet(3, shard: shard))
        #expect(try raw.keys(matching: "scores:{3}*").isEmpty)
        #expect(try store.removeSets([6, 9], shard: shard) == 2)
        #expect(try raw.keys(matching: "scores:*").isEmpty)
        // Written again exactly as before (same answers version, same second) and changed the same way.
        try store.writeSet(3, shard: shard, matches: rankedMatches(for: 3, count: 5), answersVersion: "s", limit: 10, complete: true, generatedAt: 100)
        try watch(shards, 3)
        _ = store.place(900, into: 3, tenths: 50, limit: 10, shard: shard)
        _ = store.place(901, into: 3, tenths: 50, limit: 10, shard: shard)
        let again = try store.readMeta(3, shard: shard, since: copy)
        let meta = try #require(again.meta)
        #expect(meta != copy && meta.written != copy.written, "a new lifetime has a new identity")
        #expect(again.changes == nil)
    }

    @Test("a set without a write identity (written before it existed) keeps no log, and a copy of it is read whole")
    func legacyIdentity() throws {
        let shards = try Shards()
        let target: MemberID = 10
        let shard = Shards.shardOf(target)!
        try shards.store.writeSet(target, shard: shard, matches: rankedMatches(for: target, count: 5), answersVersion: "s", limit: 10, complete: true)
        let raw = try shards.raw(shard)
        defer { raw.close() }
        _ = try raw.sendChecked(["HDEL", "scores:{\(target)}:meta", "written"])
        try watch(shards, target)
        let copy = try #require(try shards.store.readMeta(target, shard: shard))
        #expect(copy.written == 0)
        #expect(shards.store.place(900, into: target, tenths: 50, limit: 10, shard: shard).count(.entered) == 1)
        #expect(try log(shards, target).isEmpty)
        #expect(try shards.store.readMeta(target, shard: shard, since: copy).changes == nil)
    }

    @Test("a log key of another type fails no placement and no read: the copy is read whole")
    func foreignLogKey() throws {
        let shards = try Shards()
        let target: MemberID = 11
        let shard = Shards.shardOf(target)!
        try shards.store.writeSet(target, shard: shard, matches: rankedMatches(for: target, count: 5), answersVersion: "s", limit: 10, complete: true)
        try watch(shards, target)
        let copy = try #require(try shards.store.readMeta(target, shard: shard))
        let raw = try shards.raw(shard)
        defer { raw.close() }
        _ = try raw.sendChecked(["SET", "scores:{\(target)}:log", "not a list"])
        let placed = shards.store.place(900, into: target, tenths: 50, limit: 10, shard: shard)
        #expect(placed.count(.entered) == 1 && placed.failed == 0)
        let read = try shards.store.readMeta(target, shard: shard, since: copy)
        #expect(read.meta?.changes == copy.changes + 1 && read.changes == nil)
        // A whole write replaces it with a proper log.
        try shards.store.writeSet(target, shard: shard, matches: rankedMatches(for: target, count: 5), answersVersion: "s", limit: 10, complete: true)
        let fresh = try #require(try shards.store.readMeta(target, shard: shard))
        _ = shards.store.place(900, into: target, tenths: 50, limit: 10, shard: shard)
        #expect(try shards.store.readMeta(target, shard: shard, since: fresh).changes?.count == 1)
    }

    @Test("placements log a set's changes only while a reader watches it; unwatched, a copy is read whole; a reader renews its mark past half its time; a lapsed mark stops the log; no mark makes a set")
    func watchMarks() throws {
        let shards = try Shards()
        let store = shards.store
        let target: MemberID = 12
        let shard = Shards.shardOf(target)!
        let raw = try shards.raw(shard)
        defer { raw.close() }
        func watched() throws -> Int? { try raw.sendChecked(["HGET", "scores:{\(target)}:meta", "watched"]).string.flatMap { Int($0) } }
        try store.writeSet(target, shard: shard, matches: rankedMatches(for: target, count: 5), answersVersion: "s", limit: 10, complete: true)
        // Nobody watches: the placement changes the set and logs nothing; a copy from before is read whole.
        let unwatched = try #require(try store.readMeta(target, shard: shard))
        #expect(store.place(900, into: target, tenths: 50, limit: 10, shard: shard).count(.entered) == 1)
        #expect(try log(shards, target).isEmpty && raw.sendChecked(["EXISTS", "scores:{\(target)}:log"]).int == 0)
        let gap = try store.readMeta(target, shard: shard, since: unwatched, watch: true)
        #expect(gap.meta?.changes == unwatched.changes + 1 && gap.changes == nil)
        // That read set the mark: from now on every change is logged, and a copy follows them.
        let now = Int(Date().timeIntervalSince1970)
        let mark = try #require(try watched())
        #expect(mark >= now + store.configuration.watchSeconds - 5 && mark <= now + store.configuration.watchSeconds + 5)
        let copy = try #require(gap.meta)
        _ = store.place(901, into: target, tenths: 60, limit: 10, shard: shard)
        _ = store.place(900, into: target, tenths: nil, limit: 10, shard: shard)
        let followed = try store.readMeta(target, shard: shard, since: copy, watch: true)
        #expect(followed.changes?.map(\.member) == [901, 900])
        // A fresh mark is left alone (reads stay reads); one past half its time is renewed.
        #expect(try watched() == mark)
        _ = try raw.sendChecked(["HSET", "scores:{\(target)}:meta", "watched", String(now + 10)])
        _ = try store.readMeta(target, shard: shard, since: nil, watch: true)
        #expect(try watched() ?? 0 >= now + store.configuration.watchSeconds - 5)
        // A mark that lapsed (the reader went away): changes are no longer logged.
        _ = try raw.sendChecked(["HSET", "scores:{\(target)}:meta", "watched", String(now - 10)])
        let before = try log(shards, target).count
        _ = store.place(902, into: target, tenths: 70, limit: 10, shard: shard)
        #expect(try log(shards, target).count == before)
        // Reads without `watch` set no mark; a member without a set gets no meta from a watching read.
        _ = try raw.sendChecked(["HDEL", "scores:{\(target)}:meta", "watched"])
        _ = try store.readMeta(target, shard: shard, since: copy)
        #expect(try watched() == nil)
        #expect(try store.readMeta(15, shard: Shards.shardOf(15)!, since: nil, watch: true).meta == nil)
        let other = try shards.raw(Shards.shardOf(15)!)
        defer { other.close() }
        #expect(try other.sendChecked(["EXISTS", "scores:{15}:meta"]).int == 0)
    }

    @Test("entries that are not what the script writes do not parse")
    func parsing() {
        for bad in [
            "", "1 2 set 3 4", "1 2 set 3 4 5 trim", "1 2 set 3 101 -1", "1 2 set 3 -1 -1", "0 2 del 3 4", "1 0 del 3 4",
            "1 2 del 0 4", "1 2 del 3 4 5", "1 2 put 3 4 5", "1 2 set 3 4 5 trim 7", "1 2 set 3 4 5 cut 7:8", "1  2 del 3 4",
            "1 2 del 4294967296 4", "x 2 del 3 4",
        ] {
            #expect(ScoreStore.SetChange.parse(bad) == nil, "\(bad)")
        }
        #expect(
            ScoreStore.SetChange.parse("5 4 set 3 70 -1 trim 65:12")
                == ScoreStore.SetChange(changes: 5, written: 4, member: 3, tenths: 70, previous: nil, trimmedTo: Match(id: 12, tenths: 65)))
    }
}
