import Foundation
import MariaDBClient
import MemberFormat
@_spi(Testing) import MemberStore
import Scoring
import Testing
import TestSupport

/// Checks that every live member's row agrees with their blocks: the stored
/// answers version is the digest of the row and the blocks as stored, so a
/// row written without its blocks (or the reverse) shows up here.
func expectWholeMembers(_ connection: MariaDBConnection, survey: Survey, sourceLocation: SourceLocation = #_sourceLocation)
    throws
{
    let repository = MemberRepository(connection: connection, survey: survey)
    var after: MemberID = 0
    while true {
        let ids = try repository.memberIDs(.all, after: after, limit: 1000)
        guard let last = ids.last else { break }
        for id in ids {
            let member = try #require(try repository.member(id), sourceLocation: sourceLocation)
            #expect(
                try repository.answersVersion(of: id) == AnswersVersion.of(member, survey: survey),
                "member \(id): row and blocks disagree", sourceLocation: sourceLocation)
        }
        after = last
    }
}

/// Parses lines as the importer would, keeping the last member of each id.
func expectedMembers(_ lines: [String], survey: Survey) -> [MemberID: Member] {
    let parser = MemberParser(survey: survey)
    var members: [MemberID: Member] = [:]
    for line in lines {
        if case .success(let member) = parser.parse(line) { members[member.id] = normalized(member) }
    }
    return members
}

@Suite("Import", .offCooperativePool)
struct ImportTests {
    static let badLines: [(line: String, reason: String)] = [
        ("{\"id\": 70, \"gender\": \"man\"", "malformed JSON"),
        (#"{"id":71,"gender":"man","seeking":["woman"],"age":12,"age_min":18,"age_max":40,"answers":[]}"#, "age: must be an integer from 18 to 120 (member 71)"),
        (#"{"id":72,"gender":"man","seeking":["woman"],"age":30,"age_min":18,"age_max":40,"answers":[{"q":12,"answer":0,"accept":[0],"importance":1}]}"#, "answers[0].q: unknown question (member 72)"),
        (#"{"id":73,"gender":"man","seeking":["woman"],"age":30,"age_min":18,"age_max":40,"answers":[{"q":1,"answer":0,"accept":[],"importance":1}]}"#, "answers[0].accept: must not be empty (member 73)"),
        (#"{"id":74,"gender":"man","seeking":["woman"],"age":30,"age_min":18,"age_max":40,"answers":[{"q":1,"answer":0,"accept":[0],"importance":1},{"q":1,"answer":1,"accept":[1],"importance":1}]}"#, "answers[1].q: question 1 answered twice (member 74)"),
    ]

    @Test("good and bad lines: every rejection reported with its line number, every good member stored whole and equal to what was parsed")
    func goodAndBadLines() throws {
        try withStore { connection, _, _ in
            try withTemporaryDirectory { directory in
                var lines: [String] = []
                var expectedRejections: [(Int, String)] = []
                for id in MemberID(1)...40 {
                    lines.append(MemberWriter.line(sampleMember(id, blocked: id % 4 == 0 ? [id + 100, id + 1] : [])).trimmingCharacters(in: .newlines))
                    if id % 8 == 0 {
                        let bad = Self.badLines[Int(id / 8) - 1]
                        lines.append(bad.line)
                        expectedRejections.append((lines.count, bad.reason))
                    }
                    if id == 20 { lines.append("   ") }
                }
                let files = try writeFiles(directory, survey: smallSurvey, lines: lines)
                var rejections: [LineRejection] = []
                var progress: [ImportProgress] = []
                let importer = Importer(connection: connection, options: .init(batchSize: 7, parserThreads: 2))
                let summary = try importer.run(
                    surveyPath: files.survey, membersPath: files.members,
                    onReject: { rejections.append($0) }, onProgress: { progress.append($0) })

                #expect(rejections.map(\.line) == expectedRejections.map(\.0))
                for (rejection, expected) in zip(rejections, expectedRejections) {
                    #expect(rejection.description.hasPrefix("line \(expected.0): "))
                    #expect(rejection.description.contains(expected.1), "\(rejection)")
                }
                #expect(summary.progress.members == 40 && summary.progress.rejected == 5)
                #expect(summary.progress.lines == lines.count && summary.blankLines == 1)
                #expect(summary.storedSurvey)
                #expect(progress.map(\.lines) == progress.map(\.lines).sorted() && progress.last?.lines == lines.count)
                #expect(progress.last?.rejected == 5)
                #expect(summary.progress.bytesRead == summary.progress.totalBytes)

                let repository = try MemberRepository.open(connection)
                let expected = expectedMembers(lines, survey: smallSurvey)
                #expect(expected.count == 40)
                #expect(try repository.memberIDs(.all) == expected.keys.sorted())
                for (id, member) in expected {
                    #expect(try repository.member(id) == member)
                }
                for id in MemberID(70)...74 { #expect(try repository.member(id) == nil) }
                try expectWholeMembers(connection, survey: smallSurvey)
            }
        }
    }

    @Test("re-import: changed members get a new answers version; unchanged ones keep it (and changed_at); last_active alone keeps the version")
    func reimport() throws {
        try withStore { connection, _, _ in
            try withTemporaryDirectory { directory in
                let original = (MemberID(1)...30).map { sampleMember($0, blocked: $0 % 5 == 0 ? [$0 + 1] : []) }
                let first = try writeFiles(directory, survey: smallSurvey, lines: original.map(MemberWriter.line), name: "a.jsonl")
                _ = try Importer(connection: connection).run(surveyPath: first.survey, membersPath: first.members)
                let repository = try MemberRepository.open(connection)
                func state() throws -> [MemberID: (UInt64, String)] {
                    var result: [MemberID: (UInt64, String)] = [:]
                    for row in try connection.query("SELECT id, answers_version, CAST(changed_at AS CHAR) FROM members") {
                        result[MemberID(row.uint(0)!)] = (row.uint(1)!, row.string(2)!)
                    }
                    return result
                }
                let before = try state()

                var changed = original
                let scoringChanges: Set<MemberID> = [2, 7, 11, 25]
                let activityOnly: Set<MemberID> = [3, 12]
                for index in changed.indices {
                    let id = changed[index].id
                    if scoringChanges.contains(id) {
                        switch id {
                        case 2: changed[index] = sampleMember(id, variant: 1, blocked: changed[index].blocked)
                        case 7: changed[index].ageMax -= 1
                        case 11: changed[index].blocked = [1]
                        default: changed[index].seeking = .nonbinary
                        }
                    }
                    if activityOnly.contains(id) { changed[index].lastActive! += 86_400 }
                }
                let second = try writeFiles(directory, survey: smallSurvey, lines: changed.map(MemberWriter.line), name: "b.jsonl")
                let summary = try Importer(connection: connection).run(surveyPath: second.survey, membersPath: second.members)
                #expect(summary.storedSurvey == false)
                let after = try state()
                for member in changed {
                    let (oldVersion, oldAnswersVersion) = before[member.id]!
                    let (newVersion, newAnswersVersion) = after[member.id]!
                    if scoringChanges.contains(member.id) {
                        #expect(newVersion != oldVersion, "member \(member.id)")
                        #expect(newAnswersVersion > oldAnswersVersion)
                    } else if activityOnly.contains(member.id) {
                        #expect(newVersion == oldVersion, "member \(member.id)")
                        #expect(newAnswersVersion > oldAnswersVersion, "member \(member.id): last_active is a change")
                    } else {
                        #expect(newVersion == oldVersion, "member \(member.id)")
                        #expect(newAnswersVersion == oldAnswersVersion, "member \(member.id): nothing changed")
                    }
                    #expect(try repository.member(member.id) == normalized(member))
                }
                try expectWholeMembers(connection, survey: smallSurvey)
            }
        }
    }

    @Test("duplicate ids in one file: the last line wins, within a batch and across batches")
    func duplicates() throws {
        try withStore { connection, _, _ in
            try withTemporaryDirectory { directory in
                let lines = [
                    sampleMember(1, variant: 0, blocked: [5]), sampleMember(2), sampleMember(1, variant: 1, blocked: [6, 7]),
                    sampleMember(3), sampleMember(2, variant: 2), sampleMember(4), sampleMember(5),
                    sampleMember(1, variant: 3), sampleMember(6),
                ].map(MemberWriter.line)
                let files = try writeFiles(directory, survey: smallSurvey, lines: lines)
                let summary = try Importer(connection: connection, options: .init(batchSize: 3)).run(
                    surveyPath: files.survey, membersPath: files.members)
                #expect(summary.progress.members == 9)
                let repository = try MemberRepository.open(connection)
                #expect(try repository.counts().live == 6)
                #expect(try repository.member(1) == normalized(sampleMember(1, variant: 3)))
                #expect(try repository.member(2) == normalized(sampleMember(2, variant: 2)))
                #expect(try connection.query("SELECT COUNT(*) FROM blocks WHERE member_id = 1").first?.int(0) == 0)
                try expectWholeMembers(connection, survey: smallSurvey)
            }
        }
    }

    @Test("a survey different from the stored one stops the import before any member is written")
    func surveyMismatch() throws {
        try withStore { connection, _, _ in
            try withTemporaryDirectory { directory in
                let files = try writeFiles(directory, survey: smallSurvey, lines: [MemberWriter.line(sampleMember(1))])
                _ = try Importer(connection: connection).run(surveyPath: files.survey, membersPath: files.members)
                var counts = smallSurvey.optionCounts
                counts[3] = 8
                let other = try Survey(optionCounts: counts)
                let otherFiles = try writeFiles(
                    directory + "/", survey: other, lines: [MemberWriter.line(sampleMember(2))], name: "other.jsonl")
                let error = try #require(throws: MemberStoreError.self) {
                    try Importer(connection: connection).run(surveyPath: otherFiles.survey, membersPath: otherFiles.members)
                }
                #expect(error.code == .surveyMismatch)
                #expect(error.message.contains("question 3"))
                #expect(try MemberRepository.open(connection).memberIDs(.all) == [1])
            }
        }
    }

    @Test("an unmigrated database is refused with a pointer to kindred migrate; a missing file is a clear error")
    func preconditions() throws {
        try withStore(migrate: false) { connection, _, _ in
            try withTemporaryDirectory { directory in
                let files = try writeFiles(directory, survey: smallSurvey, lines: [MemberWriter.line(sampleMember(1))])
                let error = try #require(throws: MemberStoreError.self) {
                    try Importer(connection: connection).run(surveyPath: files.survey, membersPath: files.members)
                }
                #expect(error.code == .schemaOutdated)
                #expect(error.message.contains("kindred migrate"))
                try Migrator.migrate(connection)
                #expect(throws: ImportError.self) {
                    try Importer(connection: connection).run(surveyPath: files.survey, membersPath: directory + "/missing.jsonl")
                }
            }
        }
    }
}
