import Hummingbird
@testable import KindredTestKit
import ScoreStore
import Scoring
import Synthetic
import Testing
import TestSupport
@testable import WebAPI

/// The API's hand-written JSON: numbers, scores and escapes, without servers.
@Suite("JSON output", .offCooperativePool)
struct JSONOutputTests {
    func written(_ build: (inout JSONOutput) -> Void) -> String {
        var json = JSONOutput()
        build(&json)
        return String(buffer: json.buffer)
    }

    @Test("integers as decimal digits, whatever their width and sign")
    func integers() {
        for value in [0, 7, 10, 99, 100, 4_294_967_295, 1_000_000_000_000, -1, -42, Int.max, Int.min] {
            #expect(written { $0.int(value) } == String(value))
        }
        #expect(written { $0.int(UInt32.max) } == "4294967295")
        #expect(written { $0.int(UInt64.max) } == "18446744073709551615")
    }

    @Test("scores as SCORING.md writes them, quoted")
    func scores() {
        for tenths in 0...100 {
            #expect(written { $0.score(tenths) } == "\"\(tenths / 10).\(tenths % 10)\"")
        }
    }

    @Test("strings escaped as RFC 8259 requires")
    func strings() {
        #expect(written { $0.string("a\"b\\c\nd\te\u{01}f é") } == "\"a\\\"b\\\\c\\nd\\te\\u0001f é\"")
    }

    @Test("a list of matches written in one reservation is each entry as the field writers write it")
    func matchLists() {
        var generator = SystemRandomNumberGenerator()
        var matches: [Match] = [
            .init(id: 1, tenths: 0), .init(id: 9, tenths: 5), .init(id: 10, tenths: 99), .init(id: 4_294_967_295, tenths: 100),
        ]
        for _ in 0..<500 {
            matches.append(.init(id: MemberID.random(in: 1...MemberID.max, using: &generator), tenths: Int.random(in: 0...100, using: &generator)))
        }
        let expected = matches.enumerated().map { index, match in
            (index == 0 ? "" : ",") + "{\"id\":\(match.id),\"score\":\"\(match.tenths / 10).\(match.tenths % 10)\"}"
        }.joined()
        #expect(written { $0.raw("["); $0.matches(matches); $0.raw("]") } == "[" + expected + "]")
        #expect(written { $0.matches([]) } == "")
        #expect(written { $0.matches([.init(id: 4_294_967_295, tenths: 100)]) } == "{\"id\":4294967295,\"score\":\"10.0\"}")
    }

    @Test("a page of matches is the documented JSON")
    func page() throws {
        let page = MatchesPage(
            member: 17, total: 2, offset: 0, limit: 50, generatedAt: 1_795_000_000, regenerated: true,
            matches: [.init(id: 4, tenths: 100), .init(id: 9, tenths: 73)])
        #expect(
            String(buffer: WebRoutes.matchesJSON(page).buffer)
                == "{\"member\":17,\"total\":2,\"offset\":0,\"limit\":50,\"generated_at\":\"2026-11-18T11:06:40Z\",\"regenerated\":true,\"matches\":[{\"id\":4,\"score\":\"10.0\"},{\"id\":9,\"score\":\"7.3\"}]}\n")
    }
}

@Suite("Ranked-set cache (no server)", .offCooperativePool)
struct RankedSetCacheTests {
    static func meta(answersVersion: String = "7", generatedAt: Int64 = 100, changes: Int = 1, count: Int = 3, written: Int = 1) -> ScoreStore.SetMeta {
        ScoreStore.SetMeta(
            answersVersion: answersVersion, generatedAt: generatedAt, count: count, limit: 10, floor: nil, isComplete: true, changes: changes, written: written)
    }

    @Test("a cached set is served only for exactly the meta it was read with; a moved counter, a rewrite or another shard is a miss")
    func exactMetaOnly() throws {
        let cache = RankedSetCache(capacity: 4)
        cache.store(1, shard: 1, meta: Self.meta(), ranked: [1, 2, 3])
        #expect(cache.lookup(1, shard: 1, meta: Self.meta())?.ranked == [1, 2, 3])
        #expect(cache.copyMeta(1, shard: 1) == Self.meta())
        // Placements moved the counter: the copy must be brought up to date (or read again) first.
        #expect(cache.lookup(1, shard: 1, meta: Self.meta(changes: 5, count: 4)) == nil)
        // A rewrite (another answers version, write time, or the same answers version in the same second) or another shard.
        #expect(cache.lookup(1, shard: 1, meta: Self.meta(answersVersion: "8")) == nil)
        #expect(cache.lookup(1, shard: 1, meta: Self.meta(generatedAt: 101)) == nil)
        #expect(cache.lookup(1, shard: 1, meta: Self.meta(changes: 6, written: 6)) == nil)
        #expect(cache.lookup(1, shard: 2, meta: Self.meta()) == nil)
        #expect(cache.copyMeta(1, shard: 2) == nil)
        cache.remove(1)
        #expect(cache.copyMeta(1, shard: 1) == nil && cache.lookup(1, shard: 1, meta: Self.meta()) == nil)
    }

    @Test("changes applied to a cached copy give the ranking a whole read gives; a change that does not fit drops the copy")
    func applyingChanges() throws {
        let matches = [Match(id: 4, tenths: 90), Match(id: 2, tenths: 70), Match(id: 9, tenths: 70), Match(id: 5, tenths: 30)]
        let copy = Self.meta(changes: 10, count: 4, written: 3)
        let cache = RankedSetCache(capacity: 4)
        cache.store(1, shard: 1, meta: copy, ranked: matches.map(RankedSetCache.key))
        cache.storeView(1, shard: 1, meta: copy, key: RankedSetCache.ViewKey(snapshot: 1, marks: 1), view: [1])
        let changes = [
            ScoreStore.SetChange(changes: 11, written: 3, member: 9, tenths: 95, previous: 70),  // moves up
            ScoreStore.SetChange(changes: 12, written: 3, member: 7, tenths: 70, previous: nil),  // enters, tied
            ScoreStore.SetChange(changes: 13, written: 3, member: 4, tenths: nil, previous: 90),  // leaves
            ScoreStore.SetChange(changes: 14, written: 3, member: 1, tenths: 30, previous: nil, trimmedTo: Match(id: 7, tenths: 70)),
        ]
        let now = Self.meta(changes: 14, count: 3, written: 3)
        let truth = [Match(id: 9, tenths: 95), Match(id: 2, tenths: 70), Match(id: 7, tenths: 70)].map(RankedSetCache.key)
        // From a copy it does not hold: nothing.
        #expect(cache.apply(1, shard: 1, from: Self.meta(changes: 9, count: 4, written: 3), to: now, changes: changes) == nil)
        #expect(cache.apply(1, shard: 1, from: copy, to: now, changes: changes) == truth)
        #expect(cache.lookup(1, shard: 1, meta: now)?.ranked == truth)
        #expect(cache.view(1, shard: 1, meta: now, key: RankedSetCache.ViewKey(snapshot: 1, marks: 1)) == nil)
        #expect(cache.stats.applied == 1)
        // Another reader asking with the old copy finds it there already.
        #expect(cache.apply(1, shard: 1, from: copy, to: now, changes: changes) == truth)
        // A change that does not fit (a previous score the copy does not hold): no ranking, and the copy is not served again.
        let wrong = [ScoreStore.SetChange(changes: 15, written: 3, member: 9, tenths: 10, previous: 20)]
        #expect(cache.apply(1, shard: 1, from: now, to: Self.meta(changes: 15, count: 3, written: 3), changes: wrong) == nil)
        #expect(cache.copyMeta(1, shard: 1) == nil && cache.lookup(1, shard: 1, meta: now) == nil)
    }

    @Test("random changes applied to a ranking equal the model's ranking (no server)", arguments: [1, 2, 3])
    func applyingMatchesAModel(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        var model: [MemberID: Int] = [:]
        for id in 1...200 where Bool.random(using: &random) { model[MemberID(id)] = Int.random(in: 0...100, using: &random) }
        func ranking(_ model: [MemberID: Int]) -> [UInt64] { model.map { RankedSetCache.key(Match(id: $0.key, tenths: $0.value)) }.sorted() }
        var ranked = ranking(model)
        for step in 0..<2000 {
            let id = MemberID(Int.random(in: 1...220, using: &random))
            var change = ScoreStore.SetChange(changes: step + 1, written: 1, member: id, tenths: nil, previous: model[id])
            if Int.random(in: 0..<3, using: &random) > 0 { change.tenths = Int.random(in: 0...100, using: &random) }
            model[id] = change.tenths
            if step % 50 == 49, let floor = ranking(model).dropFirst(model.count * 3 / 4).first {
                change.trimmedTo = Match(id: RankedSetCache.id(floor), tenths: RankedSetCache.tenths(floor))
                model = model.filter { RankedSetCache.key(Match(id: $0.key, tenths: $0.value)) <= floor }
            }
            #expect(RankedSetCache.applying([change], to: &ranked))
            #expect(ranked == ranking(model), "step \(step)")
            if ranked != ranking(model) { return }
        }
    }
}

