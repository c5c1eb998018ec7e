import MariaDBClient
@_spi(Testing) import MemberStore
import Scoring
import Testing
import TestSupport

@Suite("Members in MySQL", .offCooperativePool)
struct MemberRepositoryTests {
    @Test("the first survey is stored; the same survey again is accepted; a different one is refused, naming the first differing question")
    func survey() throws {
        try withStore { connection, _, _ in
            #expect(try SurveyStore.stored(connection) == nil)
            #expect(try SurveyStore.store(smallSurvey, connection) == true)
            #expect(try SurveyStore.stored(connection) == smallSurvey)
            #expect(try SurveyStore.store(smallSurvey, connection) == false)

            var counts = smallSurvey.optionCounts
            counts[7] = 6
            counts[9] = 2
            let changed = try #require(throws: MemberStoreError.self) {
                try SurveyStore.store(try Survey(optionCounts: counts), connection)
            }
            #expect(changed.code == .surveyMismatch)
            #expect(changed.message.contains("question 7 has 6 options here but 4 in the stored survey"))
            let longer = try #require(throws: MemberStoreError.self) {
                try SurveyStore.store(try Survey(optionCounts: smallSurvey.optionCounts + [3]), connection)
            }
            #expect(longer.message.contains("question 12 is not in the stored survey"))
            let shorter = try #require(throws: MemberStoreError.self) {
                try SurveyStore.store(try Survey(optionCounts: Array(smallSurvey.optionCounts.dropLast())), connection)
            }
            #expect(shorter.message.contains("question 11 is in the stored survey but not in this one"))
            #expect(try SurveyStore.stored(connection) == smallSurvey, "a refused survey changes nothing")
        }
    }

    @Test("upserted members read back equal, with their blocks; unknown and deleted ids read as nil")
    func upsertAndRead() throws {
        try withStore { connection, _, _ in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            var members: [Member] = []
            for id in MemberID(1)...50 {
                let lastActive: Int64? = id % 4 == 0 ? nil : 1_790_000_000 + Int64(id)
                let blocked: [MemberID] = id % 3 == 0 ? [id + 1, 999_999, id + 1] : []
                members.append(sampleMember(id, lastActive: lastActive, blocked: blocked))
            }
            #expect(try repository.upsert(members) == 50)
            for member in members {
                #expect(try repository.member(member.id) == normalized(member))
                #expect(try repository.answersVersion(of: member.id) == AnswersVersion.of(member, survey: smallSurvey))
            }
            #expect(try repository.member(4242) == nil)
            #expect(try repository.counts() == MemberCounts(live: 50, deleted: 0))
            #expect(try connection.query("SELECT COUNT(*) FROM blocks").first?.int(0) == 16 * 2)
        }
    }

    @Test("in one batch the last duplicate wins, and its blocks replace the earlier ones'")
    func duplicatesInBatch() throws {
        try withStore { connection, _, _ in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            let first = sampleMember(5, variant: 0, blocked: [1, 2])
            let last = sampleMember(5, variant: 2, blocked: [3])
            #expect(try repository.upsert([first, sampleMember(6), last]) == 2)
            #expect(try repository.member(5) == normalized(last))
            #expect(try connection.query("SELECT blocked_id FROM blocks WHERE member_id = 5").map { $0.int(0) } == [3])
        }
    }

    @Test("an invalid member refuses the whole batch before anything is written")
    func invalidMember() throws {
        try withStore { connection, _, _ in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            var bad = sampleMember(2)
            bad.ageMin = 90
            bad.ageMax = 30
            let error = try #require(throws: MemberStoreError.self) { try repository.upsert([sampleMember(1), bad]) }
            #expect(error.code == .invalidMember)
            #expect(error.message == "member 2: age_min: must not be greater than age_max")
            #expect(try repository.counts().live == 0)
        }
    }

    @Test("changing a scoring field changes the answers version; last_active alone or an identical write does not, and an identical write keeps changed_at")
    func versionsAndChangedAt() throws {
        try withStore { connection, _, _ in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            let member = sampleMember(8, blocked: [4])
            try repository.upsert([member])
            let version = try #require(try repository.answersVersion(of: 8))
            func changedAt() throws -> String {
                try connection.query("SELECT CAST(changed_at AS CHAR) FROM members WHERE id = 8").first!.string(0)!
            }
            let answersVersion = try changedAt()

            try repository.upsert([member])
            #expect(try changedAt() == answersVersion, "an identical write is no change")

            var active = member
            active.lastActive = member.lastActive! + 3600
            try repository.upsert([active])
            #expect(try repository.answersVersion(of: 8) == version)
            let activeAnswersVersion = try changedAt()
            #expect(activeAnswersVersion > answersVersion, "last_active is a change the snapshot must see")

            var blocked = active
            blocked.blocked = [4, 9]
            try repository.upsert([blocked])
            #expect(try repository.answersVersion(of: 8) != version)
            #expect(try changedAt() > activeAnswersVersion)

            #expect(try repository.recordActivity(8, at: 1_800_000_000))
            #expect(try repository.member(8)?.lastActive == 1_800_000_000)
            #expect(try repository.recordActivity(4242, at: 1) == false)
        }
    }

    @Test("a tombstone keeps only the id, drops blocks and generation, and a later upsert brings the member back")
    func tombstone() throws {
        try withStore { connection, _, _ in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            try repository.upsert([sampleMember(3, blocked: [1, 2]), sampleMember(4, blocked: [3])])
            try GenerationStore(connection: connection).record(
                Generation(memberID: 3, shardID: 1, answersVersion: 1, generatedAt: 1, matchCount: 10))
            let before = try connection.query("SELECT CAST(changed_at AS CHAR) FROM members WHERE id = 3").first!.string(0)!

            #expect(try repository.delete(3))
            #expect(try repository.delete(3) == false, "deleting twice changes nothing")
            #expect(try repository.delete(777) == false)
            #expect(try repository.member(3) == nil)
            #expect(try repository.isDeleted(3))
            let row = try #require(try connection.query(
                "SELECT deleted, gender, seeking, age, age_min, age_max, last_active, LENGTH(answers), answers_version, "
                    + "CAST(changed_at AS CHAR) FROM members WHERE id = 3").first)
            #expect(row.int(0) == 1)
            #expect((1...5).allSatisfy { row.int($0) == 0 })
            #expect(row.isNull(6))
            #expect(row.int(7) == 0 && row.uint(8) == 0)
            #expect(row.string(9)! > before)
            #expect(try connection.query("SELECT COUNT(*) FROM blocks WHERE member_id = 3").first?.int(0) == 0)
            #expect(try connection.query("SELECT COUNT(*) FROM blocks WHERE blocked_id = 3").first?.int(0) == 1,
                    "blocks others placed on the id stay")
            #expect(try GenerationStore(connection: connection).generation(of: 3) == nil)
            #expect(try repository.counts() == MemberCounts(live: 1, deleted: 1))

            try repository.upsert([sampleMember(3, variant: 1)])
            #expect(try repository.member(3) == normalized(sampleMember(3, variant: 1)))
            #expect(try repository.counts() == MemberCounts(live: 2, deleted: 0))
        }
    }

    @Test("activity windows select exactly the right ids, paged by id")
    func activityQueries() throws {
        try withStore { connection, _, _ in
            try SurveyStore.store(smallSurvey, connection)
            let repository = MemberRepository(connection: connection, survey: smallSurvey)
            let now: Int64 = 1_800_000_000
            let day: Int64 = 86_400
            // id -> days since last activity (nil: never active)
            let ages: [MemberID: Int64?] = [1: 0, 2: 5, 3: 29, 4: 30, 5: 31, 6: 200, 7: nil, 8: 2, 9: 400]
            try repository.upsert(ages.map { id, days in sampleMember(id, lastActive: days.map { now - $0 * day }) })
            try repository.delete(8)

            #expect(try repository.memberIDs(.activeWithin(seconds: 30 * day, now: now)) == [1, 2, 3, 4])
            #expect(try repository.memberIDs(.dormantFor(seconds: 30 * day, now: now)) == [5, 6, 7, 9])
            #expect(try repository.memberIDs(.dormantFor(seconds: 30 * day, now: now, includingNeverActive: false)) == [5, 6, 9])
            #expect(try repository.memberIDs(.activeSince(now - 5 * day)) == [1, 2])
            #expect(try repository.memberIDs(.all) == [1, 2, 3, 4, 5, 6, 7, 9])
            #expect(try repository.memberIDs(.all, after: 3, limit: 2) == [4, 5])
            #expect(try repository.memberIDs(.all, after: 9) == [])
        }
    }
}
