import Foundation
import Hummingbird
import KindredCore
@testable import KindredTestKit
import MemberFormat
import RedisClient
import ScoreStore
import Scoring
import Synthetic
import Testing
import TestSupport
@testable import WebAPI

/// The web backend's cached sets follow their shards through the sets'
/// change logs: after any sequence of placements, a cached copy brought up
/// to date equals a whole read, and a copy the log cannot bring there is
/// read whole. Its two synchronous tests run for seconds: the suite runs off
/// the cooperative pool (serialized, so its async test never waits behind
/// them there).
@Suite("Cached sets follow their change logs", .serialized, .timeLimit(.minutes(10)), .offCooperativePool)
struct SetChangeLogTests {
    /// One real shard and a store with a small slack, so that trims come
    /// often (N = 10, S = 2, W = 4: written with 12, trimmed back to 12 past 16).
    final class Shard: @unchecked Sendable {
        // @unchecked Sendable: immutable after init, thread-safe members.
        let server: RedisServer
        let store: ScoreStore

        init(changeLogLength: Int = 128) throws {
            server = try RedisServer()
            let manager = ShardConnectionManager(shards: [ShardEndpoint(id: 1, host: server.host, port: Int(server.port))])
            var configuration = ScoreStore.Configuration()
            configuration.minimumSlack = 2
            configuration.changeLogLength = changeLogLength
            store = ScoreStore(manager: manager, configuration: configuration)
        }

        deinit { store.manager.close() }
    }

    /// How a reader brought its copy up to date.
    enum Read: Equatable { case current, delta, whole }

    /// What the web backend does for a page: the meta and the changes since
    /// the copy in one step, then the copy as it is, the copy with the
    /// changes applied, or a whole read.
    static func read(_ member: MemberID, _ store: ScoreStore, _ cache: RankedSetCache) throws -> (Read, [UInt64]?) {
        let copy = cache.copyMeta(member, shard: 1)
        let read = try store.readMeta(member, shard: 1, since: copy, watch: true)
        guard let meta = read.meta else { return (.whole, nil) }
        if let cached = cache.lookup(member, shard: 1, meta: meta) { return (.current, cached.ranked) }
        if let copy, let changes = read.changes, let ranked = cache.apply(member, shard: 1, from: copy, to: meta, changes: changes) {
            return (.delta, ranked)
        }
        guard let set = try store.readSet(member, shard: 1, cutToLimit: false) else { return (.whole, nil) }
        let ranked = set.matches.map(RankedSetCache.key)
        cache.store(member, shard: 1, meta: set.meta, ranked: ranked)
        return (.whole, ranked)
    }

    /// The truth: a whole read now.
    static func wholeRead(_ member: MemberID, _ store: ScoreStore) throws -> [UInt64]? {
        try store.readSet(member, shard: 1, cutToLimit: false)?.matches.map(RankedSetCache.key)
    }

    @Test("random placements (entering, moving, leaving, trims), read every few steps: the cached copy always equals a whole read", arguments: [1, 2, 3, 4])
    func property(seed: UInt64) throws {
        let shard = try Shard(changeLogLength: 16)
        let store = shard.store
        let cache = RankedSetCache(capacity: 4)
        var random = SplitMix64(seed: seed)
        let target: MemberID = 1
        let n = 10
        func rewrite() throws {
            let ids = (2...40).map { MemberID($0) }.shuffled(using: &random).prefix(12)
            let matches = ids.map { Match(id: $0, tenths: Int.random(in: 0...100, using: &random)) }.sorted(by: Match.ranksBefore)
            try store.writeSet(target, shard: 1, matches: matches, answersVersion: "s", limit: n, complete: false)
        }
        try rewrite()
        var counts: [Read: Int] = [:]
        var step = 0
        while step < 1500 {
            // Up to 5 placements between reads, now and then more than the log keeps (a gap), rarely a whole write.
            let burst = Int.random(in: 0..<20, using: &random) == 0 ? 20 : Int.random(in: 0...5, using: &random)
            for _ in 0..<burst {
                let member = MemberID(Int.random(in: 2...60, using: &random))
                let tenths: Int? = Int.random(in: 0..<4, using: &random) == 0 ? nil : Int.random(in: 0...100, using: &random)
                let results = store.place(
                    [ScoreStore.Placement(target: target, member: member, tenths: tenths, answersVersion: "s")], limit: n) { _ in 1 }
                #expect(results.failed == 0)
                step += 1
            }
            if Int.random(in: 0..<100, using: &random) == 0 { try rewrite() }
            let (how, ranked) = try Self.read(target, store, cache)
            counts[how, default: 0] += 1
            let truth = try Self.wholeRead(target, store)
            #expect(ranked == truth, "seed \(seed), step \(step), read \(how)")
            if ranked != truth { return }
        }
        #expect((counts[.delta] ?? 0) > 100, "\(counts)")
        #expect((counts[.whole] ?? 0) > 1, "gaps and rewrites are read whole: \(counts)")
        // The trims really happened: the floor moved off the write's.
        #expect(try store.readMeta(target, shard: 1)?.floor != nil)
    }

    @Test("more changes than the log keeps, a whole write, or a removal between two reads: the copy is read whole, never patched")
    func fallbacks() throws {
        let shard = try Shard(changeLogLength: 4)
        let store = shard.store
        let cache = RankedSetCache(capacity: 4)
        let target: MemberID = 1
        let matches = (2...13).map { Match(id: MemberID($0), tenths: 40 + Int($0)) }.sorted(by: Match.ranksBefore)
        func place(_ member: MemberID, _ tenths: Int?) {
            _ = store.place([ScoreStore.Placement(target: target, member: member, tenths: tenths, answersVersion: "s")], limit: 10) { _ in 1 }
        }
        try store.writeSet(target, shard: 1, matches: matches, answersVersion: "s", limit: 10, complete: false, generatedAt: 100)
        #expect(try Self.read(target, store, cache).0 == .whole)
        #expect(try Self.read(target, store, cache).0 == .current)
        // Within the log: a delta.
        for id in 20...23 { place(MemberID(id), 90) }
        #expect(try Self.read(target, store, cache) == (.delta, try Self.wholeRead(target, store)))
        // One more than the log keeps: a gap.
        for id in 30...34 { place(MemberID(id), 95) }
        #expect(try Self.read(target, store, cache) == (.whole, try Self.wholeRead(target, store)))
        // A whole write in between (same answers version, same second), then placements: another write, read whole.
        try store.writeSet(target, shard: 1, matches: matches, answersVersion: "s", limit: 10, complete: false, generatedAt: 100)
        place(50, 99)
        #expect(try Self.read(target, store, cache) == (.whole, try Self.wholeRead(target, store)))
        // Removed and written again exactly alike, changed alike: the old copy is never taken forward.
        place(51, 99)
        let before = try #require(try store.readMeta(target, shard: 1))
        #expect(try Self.read(target, store, cache).0 == .delta)
        try store.removeSet(target, shard: 1)
        try store.writeSet(target, shard: 1, matches: matches, answersVersion: "s", limit: 10, complete: false, generatedAt: 100)
        place(50, 99)
        place(51, 99)
        let after = try #require(try store.readMeta(target, shard: 1))
        #expect(after.changes - after.written == before.changes - before.written && after.written != before.written)
        #expect(try Self.read(target, store, cache) == (.whole, try Self.wholeRead(target, store)))
    }

    @Test("through the HTTP API: pages after a member's change are exact, and the sets it placed into are not read whole again")
    func pagesAfterPlacements() async throws {
        let web = try await onThread { () -> WebHarness in
            // Every member's set fits the cache (N = 12, so floors and trims matter).
            let web = try WebHarness(memberLimit: 200, generate: false, cachedSets: 256) { $0.scoring.topN = ExactSets.topN }
            let generator = Generator(core: web.core)
            for member in web.installation.members { _ = try generator.regenerate(member.id) }
            return web
        }
        // A second web process without a cache: every page of it is a whole read, the truth to compare with.
        let truth = try await onThread {
            try WebHarness(installation: web.installation, cachedSets: 0) { $0.scoring.topN = ExactSets.topN }
        }
        let members = web.installation.members.map(\.id)
        for member in members { _ = try await ExactSets.page(web, member) }
        let warm = web.backend.setReads
        #expect(warm.whole == members.count && warm.delta == 0)
        // A member's new answers: the job rewrites their set and places them into every set the change concerns.
        var record = try #require(web.installation.members.first { $0.id == members[7] })
        let donor = try #require(web.installation.members.first { $0.id == members[90] })
        record.answers = donor.answers
        let put = try await web.send(.put, "/v1/members/\(record.id)", body: MemberWriter.line(record))
        #expect(put.status == 200, "\(put.body)")
        let changed = record.id
        let placed = try await onThread { () -> Int in
            let outcome = try Generator(core: web.core).process(changed, ownSet: .always)
            return outcome.publication.count(.entered) + outcome.publication.count(.updated) + outcome.publication.count(.removed)
        }
        #expect(placed > 10, "the change moved the member in many sets")
        _ = try await onThread { try truth.refreshSnapshot(since: truth.watermark) }
        for member in members {
            let cached = try await ExactSets.page(web, member)
            let whole = try await ExactSets.page(truth, member)
            #expect(cached.matches == whole.matches, "member \(member)")
            #expect(cached.json["total"] as? Int == whole.json["total"] as? Int, "member \(member)")
        }
        let after = web.backend.setReads
        // Only the changed member's own set (rewritten) is read whole again; every set it was placed into takes a delta.
        #expect(after.whole - warm.whole == 1, "\(after)")
        #expect(after.delta - warm.delta >= 10, "\(after)")
        try await onThread { try ExactSets.expectEverySetExact(web) }
    }
}
