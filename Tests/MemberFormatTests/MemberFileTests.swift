import Foundation
import MemberFormat
import Scoring
import Synthetic
import Testing
import TestSupport

func temporaryFile(_ contents: String) throws -> String {
    let path = NSTemporaryDirectory() + "kindred-test-\(UUID().uuidString)"
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite("Members files", .offCooperativePool)
struct MemberFileTests {
    @Test("rejected lines are reported with their line numbers and the good lines still load")
    func rejectsAndKeeps() throws {
        let line = { (id: Int, age: Int) in
            #"{"id":\#(id),"gender":"man","seeking":["woman"],"age":\#(age),"age_min":18,"age_max":99,"answers":[]}"#
        }
        let text = [line(1, 30), "", line(2, 12), "not json", line(3, 40), "   ", line(1, 50)].joined(separator: "\r\n")
        let path = try temporaryFile(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var members: [Member] = []
        var rejects: [LineRejection] = []
        let summary = try MemberFile.read(
            path: path, survey: testSurvey,
            onMember: { (m: Member, _: Int) throws(Never) in members.append(m) }, onReject: { rejects.append($0) })
        #expect(rejects.map(\.line) == [3, 4])
        #expect(rejects[0].description == "line 3: age: must be an integer from 18 to 120 (member 2)")
        #expect(rejects[1].description.hasPrefix("line 4: malformed JSON at column 1"))
        #expect(members.map(\.id) == [1, 3, 1])
        #expect(summary.lines == 7 && summary.members == 3 && summary.rejected == 2 && summary.blank == 2)
    }

    @Test("an id seen again replaces the earlier member")
    func upsertByID() throws {
        let survey = try temporaryFile(#"{"questions": [{"id": 0, "options": 4}]}"#)
        let text = """
            {"id":5,"gender":"man","seeking":["woman"],"age":30,"age_min":18,"age_max":99,"answers":[]}
            {"id":5,"gender":"woman","seeking":["man"],"age":41,"age_min":30,"age_max":50,"answers":[{"q":0,"answer":1,"accept":[1],"importance":2}]}
            """
        let members = try temporaryFile(text)
        defer {
            try? FileManager.default.removeItem(atPath: survey)
            try? FileManager.default.removeItem(atPath: members)
        }
        let (population, _) = try MemberFile.loadPopulation(surveyPath: survey, membersPath: members, onReject: { _ in })
        #expect(population.count == 1)
        #expect(population.member(5)?.gender == .woman)
        #expect(population.member(5)?.age == 41)
        #expect(population.member(5)?.answers.count == 1)
    }

    @Test("long lines, a final line without newline, and a byte order mark")
    func lineReader() throws {
        let long = String(repeating: "x", count: 300_000)
        let path = try temporaryFile("\u{FEFF}first\n\(long)\nlast")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var lines: [(Int, Int)] = []
        let reader = try LineReader(path: path, bufferSize: 1024)
        try reader.forEachLine { (line: UnsafeBufferPointer<UInt8>, number: Int) throws(Never) in
            lines.append((number, line.count))
        }
        #expect(lines.map(\.0) == [1, 2, 3])
        #expect(lines.map(\.1) == [5, 300_000, 4])
    }

    @Test("a missing file is an error naming it")
    func missingFile() {
        #expect(throws: ImportError.self) {
            try MemberFile.loadPopulation(surveyPath: "/nonexistent/survey.json", membersPath: "/x", onReject: { _ in })
        }
    }
}

@Suite("Synthetic populations", .offCooperativePool)
struct SyntheticTests {
    @Test("the same seed writes the same bytes; another seed writes others")
    func deterministic() throws {
        let dirs = (0..<3).map { _ in NSTemporaryDirectory() + "kindred-gen-\(UUID().uuidString)" }
        defer { for dir in dirs { try? FileManager.default.removeItem(atPath: dir) } }
        for (dir, seed) in zip(dirs, [11, 11, 12] as [UInt64]) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try SyntheticPopulation(members: 9_000, seed: seed).write(to: dir)
        }
        let files = try dirs.map { try Data(contentsOf: URL(fileURLWithPath: $0 + "/members.jsonl")) }
        #expect(files[0] == files[1])
        #expect(files[0] != files[2])
        // Every line it writes is valid.
        let (population, summary) = try MemberFile.loadPopulation(
            surveyPath: dirs[0] + "/survey.json", membersPath: dirs[0] + "/members.jsonl",
            onReject: { Issue.record("generated line rejected: \($0)") })
        #expect(summary.members == 9_000 && population.count == 9_000)
    }

    @Test("the population looks like a dating site")
    func realistic() {
        let synthetic = SyntheticPopulation(members: 20_000, seed: 5)
        let members = (0..<20_000).map(synthetic.member)
        func share(_ predicate: (Member) -> Bool) -> Double {
            Double(members.filter(predicate).count) / Double(members.count)
        }
        #expect((0.44...0.50).contains(share { $0.gender == .man }))
        #expect((0.44...0.50).contains(share { $0.gender == .woman }))
        #expect((0.04...0.08).contains(share { $0.gender == .nonbinary }))
        #expect(share { $0.gender == .man && $0.seeking == [.woman] } > 0.38)
        #expect(share { $0.seeking == [.man, .woman] } > 0.02)
        #expect(members.allSatisfy { (18...70).contains($0.age) && $0.ageMin <= $0.age && $0.age <= $0.ageMax })
        let answered = Double(members.map(\.answers.count).reduce(0, +)) / Double(members.count * 100)
        #expect((0.85...0.93).contains(answered))
        let importance = members.flatMap(\.answers).map(\.importance)
        let somewhat = Double(importance.filter { $0 == .somewhat }.count) / Double(importance.count)
        #expect(somewhat > 0.3)
        #expect((0.005...0.05).contains(share { !$0.blocked.isEmpty }))
        let ninetyDays = Int64(90 * 86_400)
        let recent = share { ($0.lastActive ?? 0) > synthetic.asOf - ninetyDays }
        #expect((0.35...0.45).contains(recent))
        #expect((0.01...0.05).contains(share { $0.lastActive == nil }))
        #expect(members.allSatisfy { ($0.lastActive ?? 0) <= synthetic.asOf })
    }

    @Test("scores spread across the scale")
    func scoreSpread() throws {
        let synthetic = SyntheticPopulation(members: 3_000, seed: 8)
        let population = Population(survey: synthetic.survey)
        for i in 0..<3_000 { try population.upsert(synthetic.member(i)) }
        let finder = MatchFinder(settings: ScoringSettings(topN: 100_000))
        var perPoint = [Int](repeating: 0, count: 11)
        for i in stride(from: 0, to: 3_000, by: 30) {
            for match in finder.matches(forID: synthetic.firstID + MemberID(i), in: population)! {
                perPoint[Int(match.tenths) / 10] += 1
            }
        }
        // From under 2 to over 8, with the bulk in the middle.
        #expect(perPoint[0] + perPoint[1] > 0)
        #expect(perPoint[8] + perPoint[9] > 0)
        #expect(perPoint[4] + perPoint[5] + perPoint[6] > perPoint.reduce(0, +) / 2)
    }
}

@Suite("Fixtures", .offCooperativePool)
struct FixtureTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fixtures").path

    @Test("every line of rejects.jsonl is rejected with the message in rejects.expected")
    func rejects() throws {
        let survey = try SurveyFormat.load(path: Self.fixtures + "/survey.json")
        var messages: [String] = []
        _ = try MemberFile.read(
            path: Self.fixtures + "/rejects.jsonl", survey: survey,
            onMember: { (m: Member, line: Int) throws(Never) in Issue.record("line \(line) accepted (member \(m.id))") },
            onReject: { messages.append($0.description) })
        let expected = try String(contentsOfFile: Self.fixtures + "/rejects.expected", encoding: .utf8)
            .split(separator: "\n").map(String.init)
        #expect(messages == expected)
    }

    @Test("the fixture population loads without rejections: 1,000 generated members and the edge cases")
    func population() throws {
        let (population, summary) = try MemberFile.loadPopulation(
            surveyPath: Self.fixtures + "/survey.json", membersPath: Self.fixtures + "/members.jsonl",
            onReject: { Issue.record("\($0)") })
        #expect(summary.members == 1_010 && population.count == 1_010)
        let finder = MatchFinder()
        // Edge cases behave as fixtures/README.md says.
        #expect(finder.matches(forID: 900_001, in: population) == [])
        #expect(finder.matches(forID: 900_002, in: population) == [])
        #expect(finder.matches(forID: 900_003, in: population) == [])
        let twins = try #require(finder.matches(forID: 900_010, in: population))
        #expect(Array(twins.prefix(2).map(\.id)) == [90_009, 900_007])
        #expect(!twins.contains { $0.id == 900_008 })
    }
}
