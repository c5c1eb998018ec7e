import Foundation
import RedisClient
import ScoreStore
import Scoring
import Testing
import TestSupport

/// The memory model a backfill checks shard budgets with, against the
/// arithmetic and against a real shard's `used_memory`.
@Suite("Backfill memory estimate")
struct MemoryEstimateTests {
    @Test("allocator size classes and listpack integer sizes")
    func pieces() {
        #expect([1, 8, 9, 16, 17, 100, 128].map(ScoreLayout.allocation) == [8, 8, 16, 16, 32, 112, 128])
        #expect([129, 160, 161, 256, 257, 788, 1025, 5000].map(ScoreLayout.allocation) == [160, 160, 192, 256, 320, 896, 1280, 5120])
        #expect([0, 127, 128, 4095, 4096, 32767, 32768, 8_388_607, 8_388_608, 4_294_967_295].map(ScoreLayout.listpackIntegerBytes)
            == [2, 2, 3, 3, 4, 4, 5, 5, 6, 10])
    }

    @Test("B = 64, N = 5000: ~12-13 bytes a score (BENCHMARKS.md measured 12.2); one hash is a hashtable at ~70")
    func perScore() {
        let bucketed = ScoreLayout.default.estimatedBytesPerScore(setSize: 5000, largestID: 1_000_000)
        #expect(bucketed > 11.5 && bucketed < 13.5, "\(bucketed)")
        let single = ScoreLayout(buckets: 1).estimatedBytesPerScore(setSize: 5000, largestID: 1_000_000)
        #expect(single > 60 && single < 85, "\(single)")
        #expect(ScoreLayout.default.estimatedBytes(ofSetWith: 0, largestID: 10) > 0, "an empty set still has its meta")
        #expect(ScoreLayout.default.estimatedBytes(ofSetWith: 100, largestID: 10) < ScoreLayout.default.estimatedBytes(ofSetWith: 5000, largestID: 10))
    }

    @Test("the estimate is within 10% of what a real shard's used_memory grows by", arguments: [5000, 400])
    func againstServer(setSize: Int) async throws {
        // Blocking server I/O: on a thread of its own, not the cooperative pool.
        try await onThread("memory-estimate") {
            let shards = try Shards(count: 1)
            let raw = try shards.raw(1)
            func used() throws -> Int {
                let info = try raw.send(["INFO", "memory"]).string ?? ""
                let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") } ?? ""
                return Int(line.dropFirst("used_memory:".count)) ?? 0
            }
            // A first write loads the scripts and warms the connection.
            try shards.store.writeSet(1, shard: 1, matches: [Match(id: 2, tenths: 50)], stamp: "1", limit: setSize)
            let before = try used()
            let sets = 40
            var generator = SystemRandomNumberGenerator()
            for member in MemberID(1_000)..<MemberID(1_000 + sets) {
                var ids = Set<MemberID>()
                while ids.count < setSize { ids.insert(MemberID.random(in: 10_000...999_999, using: &generator)) }  // never the member itself (1,000-1,039)
                let matches = ids.map { Match(id: $0, tenths: Int.random(in: 0...100, using: &generator)) }.sorted(by: Match.ranksBefore)
                try shards.store.writeSet(member, shard: 1, matches: matches, stamp: "1", limit: setSize)
            }
            let grown = try used() - before
            let estimate = sets * ScoreLayout.default.estimatedBytes(ofSetWith: setSize, largestID: 999_999)
            let ratio = Double(estimate) / Double(grown)
            #expect(ratio > 0.9 && ratio < 1.1, "estimate \(estimate) bytes, measured \(grown): ratio \(ratio)")
        }
    }
}
