@testable import KindredCore
@testable import KindredTestKit
@_spi(Testing) import MemberStore
import Scoring
import Synthetic
import Testing

/// The set index and its table (no server): against a `Dictionary` model,
/// under random writes, with ids in a row, far apart, and many sharing
/// their low bits (what a weak hash would pile into one run of slots).
@Suite("Set index (no server)")
struct SetIndexTests {
    static func entry(_ generatedAt: Int64, shard: UInt32 = 1) -> SetIndex.Entry {
        SetIndex.Entry(shard: shard, floorKey: UInt64(generatedAt) &* 31, coveredAt: generatedAt / 2, generatedAt: generatedAt)
    }

    @Test("the table holds what a dictionary holds, through growth, for ids in a row, far apart, and alike in their low bits", arguments: [UInt64(1), 2, 3])
    func tableMatchesADictionary(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var table = EntryTable()
        var model: [UInt32: SetIndex.Entry] = [:]
        let pools: [[UInt32]] = [
            Array(1...3_000),
            (0..<3_000).map { _ in UInt32(truncatingIfNeeded: random.next()) },
            (0..<3_000).map { UInt32($0) << 16 },  // only the high bits differ
            [0, UInt32.max, UInt32.max - 1],
        ]
        for step in 0..<30_000 {
            let pool = pools[Int(random.next() % UInt64(pools.count))]
            let id = pool[Int(random.next() % UInt64(pool.count))]
            if random.next() % 3 == 0 {
                #expect(table[id] == model[id], "step \(step): id \(id)")
            } else {
                let value = Self.entry(Int64(step), shard: UInt32(random.next() % 7))
                table[id] = value
                model[id] = value
            }
        }
        #expect(table.count == model.count)
        for (id, value) in model { #expect(table[id] == value, "id \(id)") }
        // Ids never written are absent, also next to written ones.
        for id in model.keys.prefix(500) where model[id &+ 1] == nil { #expect(table[id &+ 1] == nil) }
        table.removeAll()
        #expect(table.count == 0 && table[1] == nil && table[0] == nil)
        for id in model.keys { #expect(table[id] == nil, "id \(id) after removeAll") }
        // Refilled at its kept size, it holds the new entries only.
        table[7] = Self.entry(1)
        #expect(table.count == 1 && table[7] == Self.entry(1))
    }

    @Test("the index keeps each member's newest record; a full reload replaces everything; look-ups under one lock see the same")
    func newestWins() {
        let index = SetIndex()
        #expect(index.entry(of: 5) == nil && index.count == 0)
        index.wrote(5, entry: Self.entry(200))
        index.wrote(5, entry: Self.entry(100))  // older: ignored
        #expect(index.entry(of: 5)?.generatedAt == 200)
        index.wrote(5, entry: Self.entry(300))
        #expect(index.entry(of: 5)?.generatedAt == 300)
        index.wrote(6, entry: Self.entry(50, shard: 2))
        #expect(index.count == 2)
        #expect(index.entries(of: [5, 6, 7]) == [5: Self.entry(300), 6: Self.entry(50, shard: 2)])
        #expect(index.withEntries { entryOf in [5, 6, 7].map { entryOf($0)?.generatedAt } } == [300, 50, nil])
        index.apply([], replacingAll: true)
        #expect(index.count == 0 && index.entry(of: 5) == nil)
    }
}
