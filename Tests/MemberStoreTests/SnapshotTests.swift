import Foundation
import MariaDBClient
import MemberFormat
@_spi(Testing) import MemberStore
import Scoring
import Synthetic
import TestSupport
import Testing

@Suite("Snapshot load and refresh", .offCooperativePool)
struct SnapshotTests {
    @Test("the loaded population equals what was imported, blocks included")
    func loadEqualsImport() throws {
        try withStore { connection, _, _ in
            try withTemporaryDirectory { directory in
                let synthetic = SyntheticPopulation(members: 2000, seed: 7)
                try synthetic.write(to: directory)
                _ = try Importer(connection: connection).run(
                    surveyPath: directory + "/survey.json", membersPath: directory + "/members.jsonl")
                var invalid: [InvalidMemberRow] = []
                let (population, watermark) = try SnapshotLoader(connection: connection).load(onInvalid: { invalid.append($0) })
                #expect(invalid.isEmpty)
                #expect(population.survey == synthetic.survey)
                #expect(population.count == 2000)
                #expect(population.unsortedCount == 0, "organized after the load")
                var withBlocks = 0
                for index in 0..<2000 {
                    let member = synthetic.member(index)
                    if !member.blocked.isEmpty { withBlocks += 1 }
                    #expect(population.member(member.id) == normalized(member), "member \(member.id)")
                }
                #expect(withBlocks > 10, "the population exercises blocks")
                #expect(watermark.serverTime.count == 26, "YYYY-MM-DD HH:MM:SS.ffffff")
            }
        }
    }

    @Test("refresh applies upserts, activity and tombstones made after the load; re-applying the overlap is harmless")
    func refresh() throws {
        try withStore { connection, _, _ in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            try repository.upsert((MemberID(1)...20).map { sampleMember($0, blocked: $0 == 4 ? [1] : []) })
            let loader = SnapshotLoader(connection: connection)
            let (population, watermark) = try loader.load()
            #expect(population.count == 20)

            try repository.upsert([sampleMember(5, variant: 2, blocked: [6, 7]), sampleMember(100)])
            try repository.delete(7)
            try repository.delete(4)
            try repository.recordActivity(8, at: 1_800_000_123)
            let result = try loader.refresh(population, since: watermark)
            #expect(result.removed == 2 && result.invalid == 0)
            #expect(result.upserted >= 3)
            #expect(result.watermark > watermark)
            #expect(population.count == 19)
            #expect(population.member(5) == normalized(sampleMember(5, variant: 2, blocked: [6, 7])))
            #expect(population.member(100) == normalized(sampleMember(100)))
            #expect(population.member(7) == nil && population.member(4) == nil)
            #expect(population.member(8)?.lastActive == 1_800_000_123)
            for id in MemberID(1)...20 where ![4, 5, 7, 8].contains(id) {
                #expect(population.member(id) == normalized(sampleMember(id)), "member \(id) untouched")
            }

            // Again from the new watermark: the overlap re-applies recent changes, with the same result.
            let again = try loader.refresh(population, since: result.watermark)
            #expect(again.upserted >= 3, "recent changes are within the overlap")
            #expect(population.count == 19)
            #expect(population.member(5) == normalized(sampleMember(5, variant: 2, blocked: [6, 7])))
            var noOverlap = loader
            noOverlap.overlap = .zero
            let quiet = try noOverlap.refresh(population, since: again.watermark)
            #expect(quiet.upserted == 0 && quiet.removed == 0, "nothing changed since")
        }
    }

    @Test("a write that commits after a refresh but was stamped before it is picked up by the next refresh, thanks to the overlap")
    func lateCommit() throws {
        try withStore { connection, server, database in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            try repository.upsert((MemberID(1)...5).map { sampleMember($0) })
            let loader = SnapshotLoader(connection: connection)
            var noOverlap = loader
            noOverlap.overlap = .zero
            let (population, start) = try loader.load()
            let (blindPopulation, blindStart) = try noOverlap.load()

            let writer = try server.connect(database: database)
            defer { writer.close() }
            // A transaction that stamps its rows now and commits later (raw SQL: the
            // repository's upsert commits at once).
            try writer.begin()
            try writer.execute(
                """
                INSERT INTO members (id, gender, seeking, age, age_min, age_max, last_active, answers, answers_version,
                  deleted, changed_at)
                SELECT 50, gender, seeking, age, age_min, age_max, last_active, answers, answers_version, 0, UTC_TIMESTAMP(6)
                FROM members WHERE id = 3
                """)
            try writer.execute("UPDATE members SET last_active = 1234, changed_at = UTC_TIMESTAMP(6) WHERE id = 2")
            var fifty = normalized(sampleMember(3))
            fifty.id = 50
            // Stamped now, not yet visible: these refreshes cannot see it.
            let first = try loader.refresh(population, since: start)
            let blindFirst = try noOverlap.refresh(blindPopulation, since: blindStart)
            #expect(population.member(50) == nil)
            try writer.commit()

            _ = try loader.refresh(population, since: first.watermark)
            #expect(population.member(50) == fifty, "the late commit is within the overlap")
            #expect(population.member(2)?.lastActive == 1234)
            _ = try noOverlap.refresh(blindPopulation, since: blindFirst.watermark)
            #expect(blindPopulation.member(50) == nil, "without the overlap the late commit would be lost")
            #expect(blindPopulation.member(2)?.lastActive == sampleMember(2).lastActive)
        }
    }

    @Test("hand-corrupted rows are reported with the field at fault and skipped; the rest loads; a fetch is a clear error")
    func corruptRows() throws {
        try withStore { connection, _, _ in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            try repository.upsert((MemberID(1)...30).map { sampleMember($0) })
            // What someone editing MySQL by hand could do. Question 0 has 2 options.
            try connection.execute("UPDATE members SET answers = SUBSTRING(answers, 1, 10) WHERE id = 3")
            try connection.execute("UPDATE members SET age = 7 WHERE id = 4")
            try connection.execute("UPDATE members SET gender = 9 WHERE id = 5")
            try connection.execute("UPDATE members SET seeking = 0 WHERE id = 6")
            try connection.execute("UPDATE members SET answers = CONCAT(X'8D01', SUBSTRING(answers, 3)) WHERE id = 10")
            try connection.execute("UPDATE members SET age_min = 90, age_max = 20 WHERE id = 11")
            try connection.execute("INSERT INTO blocks VALUES (12, 0)")

            var invalid: [InvalidMemberRow] = []
            let (population, _) = try SnapshotLoader(connection: connection).load(onInvalid: { invalid.append($0) })
            let byID = Dictionary(uniqueKeysWithValues: invalid.map { ($0.id, $0.reason) })
            #expect(byID.keys.sorted() == [3, 4, 5, 6, 10, 11, 12])
            #expect(byID[3]?.hasPrefix("answers: packed answers are 10 bytes, the survey needs 24") == true)
            #expect(byID[4] == "age: must be an integer from 18 to 120")
            #expect(byID[5] == "gender: unknown gender code")
            #expect(byID[6]?.hasPrefix("seeking:") == true)
            #expect(byID[10]?.hasPrefix("answers[0].answer: out of range for question 0") == true)
            #expect(byID[11] == "age_min: must not be greater than age_max")
            #expect(byID[12]?.hasPrefix("blocked:") == true)
            #expect(population.count == 23)
            #expect(population.member(1) == normalized(sampleMember(1)))

            let error = try #require(throws: MemberStoreError.self) { try repository.member(4) }
            #expect(error.code == .corruptRow)
            #expect(error.message.contains("member 4") && error.message.contains("age"))
        }
    }

    @Test("a member corrupted after the load is reported by the refresh and dropped from the population")
    func corruptOnRefresh() throws {
        try withStore { connection, _, _ in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            try repository.upsert((MemberID(1)...5).map { sampleMember($0) })
            let loader = SnapshotLoader(connection: connection)
            let (population, watermark) = try loader.load()
            try connection.execute("UPDATE members SET age = 200, changed_at = UTC_TIMESTAMP(6) WHERE id = 2")
            var invalid: [InvalidMemberRow] = []
            let result = try loader.refresh(population, since: watermark, onInvalid: { invalid.append($0) })
            #expect(invalid.map(\.id) == [2])
            #expect(result.invalid == 1 && result.removed == 1)
            #expect(population.member(2) == nil && population.count == 4)
        }
    }

    @Test("loading before any import is a clear error")
    func noSurvey() throws {
        try withStore { connection, _, _ in
            let error = try #require(throws: MemberStoreError.self) { try SnapshotLoader(connection: connection).load() }
            #expect(error.code == .noSurvey)
        }
    }
}
