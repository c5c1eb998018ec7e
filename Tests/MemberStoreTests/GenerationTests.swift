import MariaDBClient
@_spi(Testing) import MemberStore
import Scoring
import Testing
import TestSupport

@Suite("Generation bookkeeping", .offCooperativePool)
struct GenerationTests {
    @Test("record, read and forget; when two workers race, the newer generation wins")
    func recordAndRead() throws {
        try withStore { connection, _, _ in
            let store = GenerationStore(connection: connection)
            let newer = Generation(memberID: 1, shardID: 2, answersVersion: .max, generatedAt: 1_800_000_000_500, matchCount: 5000)
            let older = Generation(memberID: 1, shardID: 3, answersVersion: 7, generatedAt: 1_800_000_000_100, matchCount: 12)
            try store.record(newer)
            #expect(try store.generation(of: 1) == newer)
            try store.record(older)
            #expect(try store.generation(of: 1) == newer, "an older generation never replaces a newer one")
            let newest = Generation(memberID: 1, shardID: 3, answersVersion: 8, generatedAt: 1_800_000_000_900, matchCount: 4)
            try store.record(newest)
            #expect(try store.generation(of: 1) == newest)
            try store.forget(1)
            #expect(try store.generation(of: 1) == nil)
            #expect(try store.generation(of: 2) == nil)
        }
    }

    @Test("stale and missing queries return exactly the right ids, paged")
    func staleAndMissing() throws {
        try withStore { connection, _, _ in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            try repository.upsert((MemberID(1)...12).map { sampleMember($0) })
            let store = GenerationStore(connection: connection)
            func current(_ id: MemberID, shard: UInt32 = 1) throws -> Generation {
                Generation(
                    memberID: id, shardID: shard, answersVersion: try repository.answersVersion(of: id)!,
                    generatedAt: 1_000, matchCount: 10)
            }
            // Fresh: 1, 2, 3, 11 (shard 2). Recorded from another version: 4, 5.
            try store.record([try current(1), try current(2), try current(3), try current(11, shard: 2)])
            try store.record([
                Generation(memberID: 4, shardID: 1, answersVersion: 1, generatedAt: 1_000, matchCount: 1),
                Generation(memberID: 5, shardID: 2, answersVersion: 2, generatedAt: 1_000, matchCount: 1),
            ])
            // 2's answers change after generation: stale. 3 is only active: fresh.
            try repository.upsert([sampleMember(2, variant: 4)])
            try repository.recordActivity(3, at: 1_900_000_000)
            // 6 is deleted (no longer listed); 12 deleted after a generation recorded for it by a late worker.
            try repository.delete(6)
            try repository.delete(12)
            try store.record(Generation(memberID: 12, shardID: 1, answersVersion: 0, generatedAt: 2_000, matchCount: 0))

            #expect(try store.staleIDs() == [2, 4, 5])
            #expect(try store.missingIDs() == [7, 8, 9, 10])
            #expect(try store.staleOrMissingIDs() == [2, 4, 5, 7, 8, 9, 10])
            #expect(try store.staleOrMissingIDs(after: 4, limit: 3) == [5, 7, 8])
            #expect(try store.staleOrMissingIDs(after: 10) == [])
            #expect(try store.counts() == GenerationCounts(generated: 6, stale: 3, missing: 4))

            #expect(try store.members(onShard: 2) == [5, 11])
            #expect(try store.members(onShard: 1, after: 2, limit: 2) == [3, 4])
            #expect(try store.forgetShard(2) == 2)
            #expect(try store.members(onShard: 2) == [])
            #expect(try store.missingIDs() == [5, 7, 8, 9, 10, 11])
        }
    }
}
