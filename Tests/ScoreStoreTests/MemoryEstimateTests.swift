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

    @Test("a whole-set write's size: N + S + a share of W by the member's id, spread evenly over 0...W; N + S when not spread")
    func writtenSizes() {
        var configuration = ScoreStore.Configuration()
        for limit in [5000, 8] {
            let base = limit + configuration.slack(forLimit: limit)
            let window = configuration.trimWindow(forLimit: limit)
            var counts = [Int](repeating: 0, count: window + 1)
            let members = 200_000
            for id in 1...MemberID(members) {
                let size = configuration.writtenSize(forLimit: limit, member: id)
                #expect(size == configuration.writtenSize(forLimit: limit, member: id), "the same member, the same size")
                guard (base...base + window).contains(size) else {
                    Issue.record("member \(id): \(size) outside \(base)...\(base + window)")
                    return
                }
                counts[size - base] += 1
            }
            // Ten equal slices of the window each hold a tenth of the members (±1.5%).
            let slices = stride(from: 0, to: window + 1, by: (window + 1) / 10).prefix(10).map { start in
                counts[start..<min(window + 1, start + (window + 1) / 10)].reduce(0, +)
            }
            let expected = Double(members) * Double((window + 1) / 10) / Double(window + 1)
            for slice in slices { #expect(abs(Double(slice) - expected) < 0.015 * Double(members), "\(limit): \(slices)") }
            let mean = Double(counts.enumerated().map { $0 * $1 }.reduce(0, +)) / Double(members)
            #expect(abs(mean - Double(window) / 2) < Double(window) / 100, "\(limit): mean share \(mean) of \(window)")
        }
        configuration.spreadsWrites = false
        #expect(configuration.writtenSize(forLimit: 5000, member: 12345) == 5500)
        #expect(configuration.writtenSize(forLimit: 5000, member: 1) == 5500)
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
            try shards.store.writeSet(1, shard: 1, matches: [Match(id: 2, tenths: 50)], answersVersion: "1", limit: setSize)
            let before = try used()
            let sets = 40
            var generator = SystemRandomNumberGenerator()
            for member in MemberID(1_000)..<MemberID(1_000 + sets) {
                var ids = Set<MemberID>()
                while ids.count < setSize { ids.insert(MemberID.random(in: 10_000...999_999, using: &generator)) }  // never the member itself (1,000-1,039)
                let matches = ids.map { Match(id: $0, tenths: Int.random(in: 0...100, using: &generator)) }.sorted(by: Match.ranksBefore)
                try shards.store.writeSet(member, shard: 1, matches: matches, answersVersion: "1", limit: setSize)
            }
            let grown = try used() - before
            let estimate = sets * ScoreLayout.default.estimatedBytes(ofSetWith: setSize, largestID: 999_999)
            let ratio = Double(estimate) / Double(grown)
            #expect(ratio > 0.9 && ratio < 1.1, "estimate \(estimate) bytes, measured \(grown): ratio \(ratio)")
        }
    }
}
