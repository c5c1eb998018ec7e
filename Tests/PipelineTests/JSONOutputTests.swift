import Hummingbird
import Scoring
import ScoreStore
import Testing
@testable import WebAPI

/// The API's hand-written JSON: numbers, scores and escapes, without servers.
@Suite("JSON output")
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

@Suite("Ranked-set cache (no server)")
struct RankedSetCacheTests {
    static func meta(stamp: String = "7", generatedAt: Int64 = 100, changes: Int = 1, count: Int = 3, written: Int = 1) -> ScoreStore.SetMeta {
        ScoreStore.SetMeta(
            stamp: stamp, generatedAt: generatedAt, count: count, limit: 10, floor: nil, isComplete: true, changes: changes, written: written)
    }

    @Test("a set changed only by placements is served from the cached ranking for a bounded time; a rewrite never is")
    func placementStaleness() throws {
        let tolerant = RankedSetCache(capacity: 4, placementStaleness: .seconds(3600))
        tolerant.store(1, shard: 1, meta: Self.meta(), ranked: [1, 2, 3])
        #expect(tolerant.lookup(1, shard: 1, meta: Self.meta())?.ranked == [1, 2, 3])
        // Placements moved the counter: the same write, within the bound.
        let placed = Self.meta(changes: 5, count: 4)
        #expect(tolerant.lookup(1, shard: 1, meta: placed)?.meta == Self.meta(), "served with the meta it was read with")
        // A rewrite (another stamp or write time) or another shard: read again.
        #expect(tolerant.lookup(1, shard: 1, meta: Self.meta(stamp: "8")) == nil)
        #expect(tolerant.lookup(1, shard: 1, meta: Self.meta(generatedAt: 101)) == nil)
        // A rewrite with the same stamp in the same second (a rebuild of an unchanged member): still a rewrite.
        #expect(tolerant.lookup(1, shard: 1, meta: Self.meta(changes: 6, written: 6)) == nil)
        #expect(tolerant.lookup(1, shard: 2, meta: Self.meta()) == nil)
        // With no tolerance, any change is a miss.
        let strict = RankedSetCache(capacity: 4, placementStaleness: .zero)
        strict.store(1, shard: 1, meta: Self.meta(), ranked: [1, 2, 3])
        #expect(strict.lookup(1, shard: 1, meta: placed) == nil)
        #expect(strict.lookup(1, shard: 1, meta: Self.meta()) != nil)
    }
}
