import Foundation
import MariaDBClient
@_spi(Testing) import MemberStore
import Scoring
import TestSupport
import Testing

/// The store queries the worker daemon relies on.
@Suite("Worker queries: repair candidates, directory prefetch, split refresh", .offCooperativePool)
struct WorkerQueriesTests {
    @Test("repair candidates: assigned or recently active members with a missing, stale or misplaced set, and deleted members still assigned")
    func repairCandidates() throws {
        try withStore { connection, server, database in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            let recent: Int64 = 1_800_000_000
            let old: Int64 = 1_700_000_000
            // 1-6 active recently, 7-10 dormant, 11 never active.
            try repository.upsert((MemberID(1)...6).map { sampleMember($0, lastActive: recent) })
            try repository.upsert((MemberID(7)...10).map { sampleMember($0, lastActive: old) })
            try repository.upsert([sampleMember(11, lastActive: nil)])
            let catalog = ShardCatalog(connection: connection)
            let shardA = try catalog.add(address: "redis://10.0.0.1:7000").id
            let shardB = try catalog.add(address: "redis://10.0.0.2:7000").id
            try catalog.setState(shardB, .draining)
            let directory = SessionDirectory(try server.connect(database: database))
            let generations = GenerationStore(connection: connection)
            func generate(_ id: MemberID, on shard: UInt32) throws {
                try generations.record(Generation(
                    memberID: id, shardID: shard, answersVersion: try repository.answersVersion(of: id)!,
                    generatedAt: 1, matchCount: 1))
            }
            // 1: assigned and current. 2: assigned, never generated. 3: current but then changed answers.
            // 4: recently active, nothing yet. 5: generated on another shard than its assignment.
            // 7: dormant, assigned (by a backfill), generated and current. 8: dormant, assigned, missing.
            // 9: dormant, unassigned: left alone. 10: dormant, assigned, then deleted. 6: active, deleted, unassigned.
            for id: MemberID in [1, 2, 3, 5, 7, 8, 10] { _ = try directory.assign(id) }
            try generate(1, on: shardA)
            try generate(3, on: shardA)
            try repository.upsert([sampleMember(3, variant: 2, lastActive: recent)])
            try generate(5, on: shardB)
            try generate(7, on: shardA)
            try repository.delete(10)
            try repository.delete(6)
            let candidates = try generations.repairCandidates(activeSince: recent - 86_400)
            #expect(candidates == [2, 3, 4, 5, 8, 10])
            #expect(try generations.repairCandidates(activeSince: recent - 86_400, after: 4, limit: 2) == [5, 8])
        }
    }

    @Test("a job's read: record, blocks, version, changed_at, shard, generation, eviction and published records in one visit")
    func jobState() throws {
        try withStore { connection, server, database in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            try repository.upsert([sampleMember(1, blocked: [9, 3]), sampleMember(2), sampleMember(3)])
            let shard = try ShardCatalog(connection: connection).add(address: "redis://10.0.0.1:7000").id
            let session = StoreSession(connection: connection, survey: smallSurvey)
            let directory = ShardDirectory()
            _ = try directory.assign(1, in: session)
            _ = try directory.assign(2, in: session)
            _ = try directory.assign(3, in: session)
            let version = try #require(try repository.answersVersion(of: 1))
            try GenerationStore(connection: connection).record(
                Generation(memberID: 1, shardID: shard, answersVersion: version, generatedAt: 7, matchCount: 4))
            _ = try EvictionStore(connection: connection).evict([3], dormantBefore: 2_000_000_000, evictedAt: 1_234, run: nil)
            try PublishedStore(connection: connection, survey: smallSurvey).recordIntent(try #require(try repository.member(1)))

            let job = try session.withRetry { try $0.jobState(of: 1, publications: true) }
            let state = try session.withRetry { try $0.publications.state(of: 1) }
            #expect(job.publication.current == state.current && job.publication.current?.blocked == [3, 9])
            #expect(job.publication.currentVersion == version && job.publication.changedAt == state.changedAt && job.publication.changedAt != nil)
            #expect(job.publication.records == state.records && job.publication.records.count == 1)
            #expect(job.shard == shard && job.generation?.answersVersion == version && job.generation?.matchCount == 4)
            #expect(job.evictedAt == nil)

            let plain = try session.withRetry { try $0.jobState(of: 2, publications: false) }
            #expect(plain.publication.current?.id == 2 && plain.publication.changedAt != nil && plain.publication.records.isEmpty)
            #expect(plain.shard == shard && plain.generation == nil)
            #expect(try session.withRetry { try $0.jobState(of: 3, publications: false) }.evictedAt == 1_234)

            #expect(try session.withRetry { try $0.placements(of: [1, 2, 3, 404]) } == [
                1: SetPlacement(assigned: shard, recorded: shard), 2: SetPlacement(assigned: shard),
            ])

            // Deleted: no current record, but what a removal clears is still there; then forgetSet clears it.
            try repository.delete(1)
            try GenerationStore(connection: connection).record(
                Generation(memberID: 1, shardID: shard, answersVersion: version, generatedAt: 8, matchCount: 4))
            let deleted = try session.withRetry { try $0.jobState(of: 1, publications: true) }
            #expect(deleted.publication.current == nil && deleted.publication.currentVersion == 0 && deleted.publication.changedAt != nil)
            #expect(deleted.shard == shard && deleted.generation?.generatedAt == 8 && deleted.publication.records.count == 1)
            try session.withRetry { try $0.forgetSet(of: 1) }
            let forgotten = try session.withRetry { try $0.jobState(of: 1, publications: false) }
            #expect(forgotten.shard == nil && forgotten.generation == nil)

            let unknown = try session.withRetry { try $0.jobState(of: 404, publications: true) }
            #expect(unknown.publication.current == nil && unknown.publication.changedAt == nil && unknown.shard == nil)
            #expect(unknown.generation == nil && unknown.evictedAt == nil && unknown.publication.records.isEmpty)
        }
    }

    @Test("a publication lock is held until the session reconnects: a visit that reconnects sees it lost, and the server freed it")
    func publicationLockEpoch() throws {
        try withStore { connection, server, database in
            let mine = try server.connect(database: database)
            let session = StoreSession(connection: mine, survey: smallSurvey)
            let lock = try #require(try session.withRetry { try $0.lockPublication(of: 5) })
            #expect(session.holds(lock))
            let other = StoreSession(connection: connection, survey: smallSurvey)
            #expect(try other.withRetry { try $0.lockPublication(of: 5) } == nil, "held by the first session")
            try connection.execute("KILL CONNECTION \(mine.connectionID)")
            // The visit's first run still believes it holds the lock, its statement finds the connection
            // dead, and the run after the reconnect does not.
            var seen: [Bool] = []
            _ = try session.withRetry { session -> Bool in
                seen.append(session.holds(lock))
                return try session.publications.holdsLock(5)
            }
            #expect(seen == [true, false])
            #expect(!session.holds(lock))
            #expect(try other.withRetry { try $0.lockPublication(of: 5) } != nil, "the server freed it with the killed session")
        }
    }

    @Test("prefetch reads unknown members' shards in bulk; the cached lookup answers without MySQL")
    func prefetch() throws {
        try withStore { connection, server, database in
            let catalog = ShardCatalog(connection: connection)
            let shard = try catalog.add(address: "redis://10.0.0.1:7000").id
            let writer = SessionDirectory(try server.connect(database: database))
            for id in MemberID(1)...1500 where id % 2 == 0 { _ = try writer.assign(id) }
            let reader = SessionDirectory(try server.connect(database: database))
            #expect(reader.cachedShard(of: 2) == nil, "nothing cached yet")
            try reader.prefetch(MemberID(1)...2500)
            #expect((MemberID(1)...1500).allSatisfy { reader.cachedShard(of: $0) == ($0 % 2 == 0 ? shard : nil) })
            #expect(reader.cachedShard(of: 2400) == nil)
            // Known-unassigned members are not asked again within the TTL...
            _ = try writer.assign(2401)
            try reader.prefetch([2401])
            #expect(reader.cachedShard(of: 2401) == nil)
            // ...and are once it has passed (here: a TTL of zero).
            let eager = SessionDirectory(try server.connect(database: database), unassignedTTL: .zero)
            try eager.prefetch([2402])
            _ = try writer.assign(2402)
            try eager.prefetch([2402])
            #expect(eager.cachedShard(of: 2402) == shard)
        }
    }

    @Test("a refresh read without the population, applied separately, reports removed members' last records")
    func splitRefresh() throws {
        try withStore { connection, _, _ in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            try repository.upsert((MemberID(1)...5).map { sampleMember($0) })
            let loader = SnapshotLoader(connection: connection, overlap: .zero)
            let (population, watermark) = try loader.load()
            try repository.upsert([sampleMember(2, variant: 1), sampleMember(6)])
            try repository.delete(3)
            let changes = try loader.changes(since: watermark, survey: smallSurvey)
            #expect(Set(changes.members.map(\.id)) == [2, 6])
            #expect(changes.deleted == [3])
            #expect(population.member(3) != nil, "reading changes does not touch the population")
            var removed: [Member] = []
            let result = SnapshotLoader.apply(changes, to: population) { removed.append($0) }
            #expect(result.upserted == 2 && result.removed == 1)
            #expect(removed.map(\.id) == [3])
            #expect(removed.first == normalized(sampleMember(3)))
            #expect(population.member(2) == normalized(sampleMember(2, variant: 1)))
            #expect(population.member(6) != nil && population.member(3) == nil)
        }
    }
}
