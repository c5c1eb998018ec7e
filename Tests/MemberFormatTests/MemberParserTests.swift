import Foundation
import MemberFormat
import Scoring
import Testing
import TestSupport

/// A survey of 3 questions: 4, 2 and 8 options.
let testSurvey = try! Survey(optionCounts: [4, 2, 8])

let validLine = #"{"id": 17, "gender": "woman", "seeking": ["man", "nonbinary"], "age": 29, "age_min": 25, "age_max": 40, "last_active": "2026-10-03T18:22:05Z", "answers": [{"q": 0, "answer": 2, "accept": [1, 2], "importance": 3}, {"q": 2, "answer": 7, "accept": [0, 7], "importance": 4}], "blocked": [4711]}"#

func parse(_ line: String) -> Result<Member, MemberLineError> { MemberParser(survey: testSurvey).parse(line) }

/// The line with one field's JSON text replaced (or removed when nil).
func edited(_ field: String, _ json: String?) -> String {
    var object = try! JSONSerialization.jsonObject(with: Data(validLine.utf8)) as! [String: Any]
    if let json {
        object[field] = try! JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
    } else {
        object[field] = nil
    }
    return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
}

@Suite("Member lines: every rule of SCORING.md's import format", .offCooperativePool)
struct MemberParserTests {
    @Test("the contract's example line parses to exactly what it says")
    func example() throws {
        let member = try parse(validLine).get()
        #expect(member == Member(
            id: 17, gender: .woman, seeking: [.man, .nonbinary], age: 29, ageMin: 25, ageMax: 40,
            lastActive: Timestamp.parse("2026-10-03T18:22:05Z"),
            answers: [
                Answer(question: 0, option: 2, accepted: OptionSet8([1, 2]), importance: .very),
                Answer(question: 2, option: 7, accepted: OptionSet8([0, 7]), importance: .mandatory),
            ],
            blocked: [4711]))
    }

    @Test("optional fields may be absent or null; answers may be empty; unknown fields are ignored")
    func optionalFields() throws {
        let minimal = #"{"id":1,"gender":"man","seeking":["woman"],"age":18,"age_min":18,"age_max":120,"answers":[]}"#
        let member = try parse(minimal).get()
        #expect(member.lastActive == nil && member.blocked.isEmpty && member.answers.isEmpty)
        let nulls = #"{"id":1,"gender":"man","seeking":["woman"],"age":18,"age_min":18,"age_max":18,"answers":[],"last_active":null,"blocked":null,"nickname":{"x":[1,"a"]}}"#
        #expect(try parse(nulls).get().id == 1)
        // Fields in any order, whitespace anywhere, escapes in strings.
        let shuffled = "  {\t\"answers\" : [ ] , \"age_max\":30,\"age_min\":20,\"age\":25,\"seeking\":[\"w\\u006Fman\"],\"gender\":\"non\\u0062inary\",\"id\":4294967295}  "
        let odd = try parse(shuffled).get()
        #expect(odd.id == 4_294_967_295 && odd.gender == .nonbinary && odd.seeking == [.woman])
    }

    /// Each case breaks one rule; the error must name the field.
    static let rejections: [(String, String, String)] = [
        // (description, line, expected field or "" for a syntax error)
        ("not JSON", "{\"id\": 17, ", ""),
        ("an array, not an object", "[1, 2]", ""),
        ("trailing garbage", validLine + " x", ""),
        ("id missing", edited("id", nil), "id"),
        ("id zero", edited("id", "0"), "id"),
        ("id negative", edited("id", "-5"), "id"),
        ("id 2^32", edited("id", "4294967296"), "id"),
        ("id fractional", edited("id", "17.5"), "id"),
        ("id as a string", edited("id", "\"17\""), "id"),
        ("unknown gender", edited("gender", "\"robot\""), "gender"),
        ("gender missing", edited("gender", nil), "gender"),
        ("seeking empty", edited("seeking", "[]"), "seeking"),
        ("seeking unknown gender", edited("seeking", "[\"man\", \"elf\"]"), "seeking"),
        ("seeking not a list", edited("seeking", "\"man\""), "seeking"),
        ("age 17", edited("age", "17"), "age"),
        ("age 121", edited("age", "121"), "age"),
        ("age_min 17", edited("age_min", "17"), "age_min"),
        ("age_max 121", edited("age_max", "121"), "age_max"),
        ("age_min above age_max", edited("age_min", "41"), "age_min"),
        ("age fractional", edited("age", "29.5"), "age"),
        ("last_active not RFC 3339", edited("last_active", "\"yesterday\""), "last_active"),
        ("last_active not UTC", edited("last_active", "\"2026-10-03T18:22:05+02:00\""), "last_active"),
        ("last_active impossible date", edited("last_active", "\"2026-02-30T00:00:00Z\""), "last_active"),
        ("answers missing", edited("answers", nil), "answers"),
        ("answers not a list", edited("answers", "{}"), "answers"),
        ("unknown question", edited("answers", #"[{"q": 3, "answer": 0, "accept": [0], "importance": 1}]"#), "answers[0].q"),
        ("answer out of range", edited("answers", #"[{"q": 1, "answer": 2, "accept": [0], "importance": 1}]"#), "answers[0].answer"),
        ("answer negative", edited("answers", #"[{"q": 1, "answer": -1, "accept": [0], "importance": 1}]"#), "answers[0].answer"),
        ("accept empty", edited("answers", #"[{"q": 0, "answer": 0, "accept": [], "importance": 1}]"#), "answers[0].accept"),
        ("accept out of range", edited("answers", #"[{"q": 1, "answer": 0, "accept": [0, 2], "importance": 1}]"#), "answers[0].accept"),
        ("accept out of 0..<8", edited("answers", #"[{"q": 2, "answer": 0, "accept": [8], "importance": 1}]"#), "answers[0].accept"),
        ("importance 5", edited("answers", #"[{"q": 0, "answer": 0, "accept": [0], "importance": 5}]"#), "answers[0].importance"),
        ("importance missing", edited("answers", #"[{"q": 0, "answer": 0, "accept": [0]}]"#), "answers[0].importance"),
        ("question answered twice", edited("answers", #"[{"q": 0, "answer": 0, "accept": [0], "importance": 1}, {"q": 0, "answer": 1, "accept": [0], "importance": 1}]"#), "answers[1].q"),
        ("blocked id zero", edited("blocked", "[0]"), "blocked[0]"),
        ("blocked id too large", edited("blocked", "[4294967296]"), "blocked[0]"),
        ("blocked not a list", edited("blocked", "7"), "blocked"),
        ("a field twice", #"{"id":1,"id":2,"gender":"man","seeking":["woman"],"age":30,"age_min":20,"age_max":40,"answers":[]}"#, "id"),
    ]

    @Test("a line that breaks a rule is rejected naming the field", arguments: rejections)
    func rejection(_ rule: String, _ line: String, _ field: String) {
        switch parse(line) {
        case .success:
            Issue.record("\(rule): accepted")
        case .failure(let error):
            #expect(error.field == (field.isEmpty ? nil : field), "\(rule): \(error)")
        }
    }

    @Test("errors name the member id when the line has one, and never the member's values")
    func errorsNameIDNotValues() throws {
        guard case .failure(let error) = parse(edited("age", "117".replacingOccurrences(of: "117", with: "17"))) else {
            Issue.record("accepted")
            return
        }
        #expect(error.memberID == 17)
        #expect(error.description == "age: must be an integer from 18 to 120 (member 17)")
        // The id comes after the bad field in this line: still named.
        let late = #"{"age": 3, "gender": "man", "seeking": ["woman"], "age_min": 20, "age_max": 30, "answers": [], "id": 99}"#
        guard case .failure(let lateError) = parse(late) else { return }
        #expect(lateError.memberID == 99 && lateError.field == "age")
        // An answer problem does not print the answer.
        guard case .failure(let answerError) = parse(edited("answers", #"[{"q": 1, "answer": 6, "accept": [0], "importance": 1}]"#)) else { return }
        #expect(!answerError.description.contains("6"))
    }

    @Test("writer and parser round-trip random members")
    func roundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        let survey = try Survey(optionCounts: (0..<40).map { _ in Int.random(in: 2...8, using: &rng) })
        let parser = MemberParser(survey: survey)
        for _ in 0..<500 {
            let answers = (0..<40).filter { _ in Bool.random() }.map { q in
                let k = survey.optionCounts[q]
                return Answer(question: q, option: Int.random(in: 0..<k),
                              accepted: OptionSet8(rawValue: UInt8.random(in: 1...UInt8((1 << k) - 1))),
                              importance: Importance.allCases.randomElement()!)
            }
            let low = Int.random(in: 18...120)
            let member = Member(
                id: MemberID.random(in: 1...MemberID.max), gender: Gender.allCases.randomElement()!,
                seeking: GenderSet(rawValue: UInt8.random(in: 1...7)), age: Int.random(in: 18...120),
                ageMin: low, ageMax: Int.random(in: low...120),
                lastActive: Bool.random() ? Int64.random(in: 0...4_102_444_800) : nil,
                answers: answers, blocked: (0..<Int.random(in: 0...3)).map { _ in MemberID.random(in: 1...MemberID.max) })
            var line = MemberWriter.line(member)
            #expect(line.last == "\n")
            line.removeLast()
            #expect(try parser.parse(line).get() == member)
        }
    }
}

@Suite("Survey file", .offCooperativePool)
struct SurveyFormatTests {
    @Test("the contract's example survey parses; ids may come in any order")
    func example() throws {
        let survey = try SurveyFormat.parse(#"{"questions": [{"id": 0, "options": 4}, {"id": 1, "options": 2}]}"#)
        #expect(survey.optionCounts == [4, 2])
        let shuffled = try SurveyFormat.parse(#"{"questions": [{"id": 1, "options": 8}, {"id": 0, "options": 2}], "title": "x"}"#)
        #expect(shuffled.optionCounts == [2, 8])
        let written = SurveyFormat.encode(survey)
        #expect(try SurveyFormat.parse(written) == survey)
    }

    @Test("surveys that break the rules are refused with a reason", arguments: [
        (#"{"questions": []}"#, "1 to 512"),
        (#"{"questions": [{"id": 0, "options": 1}]}"#, "options"),
        (#"{"questions": [{"id": 0, "options": 9}]}"#, "options"),
        (#"{"questions": [{"id": 1, "options": 2}]}"#, "none missing"),
        (#"{"questions": [{"id": 0, "options": 2}, {"id": 0, "options": 3}]}"#, "given twice"),
        (#"{"questions": [{"id": -1, "options": 2}]}"#, "id"),
        (#"{"items": []}"#, "questions: is required"),
        (#"{"questions": [{"id": 0, "options": 2}]"#, "malformed"),
    ])
    func rejected(_ text: String, _ reason: String) {
        #expect {
            try SurveyFormat.parse(text)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test("512 questions is the limit")
    func limit() throws {
        let ok = "{\"questions\": [" + (0..<512).map { "{\"id\": \($0), \"options\": 2}" }.joined(separator: ",") + "]}"
        #expect(try SurveyFormat.parse(ok).questionCount == 512)
        let tooMany = "{\"questions\": [" + (0..<513).map { "{\"id\": \($0), \"options\": 2}" }.joined(separator: ",") + "]}"
        #expect(throws: SurveyError.self) { try SurveyFormat.parse(tooMany) }
    }
}

@Suite("RFC 3339 timestamps", .offCooperativePool)
struct TimestampTests {
    @Test("known instants")
    func known() {
        #expect(Timestamp.parse("1970-01-01T00:00:00Z") == 0)
        #expect(Timestamp.parse("2026-10-03T18:22:05Z") == 1_791_051_725)
        #expect(Timestamp.parse("2000-02-29T23:59:59Z") == 951_868_799)
        #expect(Timestamp.parse("2026-10-03t18:22:05z") == 1_791_051_725)
        #expect(Timestamp.parse("2026-10-03T18:22:05.999Z") == 1_791_051_725)
        #expect(Timestamp.parse("2026-10-03T18:22:05+00:00") == 1_791_051_725)
        #expect(Timestamp.format(1_791_051_725) == "2026-10-03T18:22:05Z")
        #expect(Timestamp.format(-1) == "1969-12-31T23:59:59Z")
    }

    @Test("invalid timestamps", arguments: [
        "2026-10-03 18:22:05Z", "2026-10-03T18:22:05", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
        "2026-10-03T24:00:00Z", "2026-10-03T18:60:05Z", "2026-10-03T18:22:60Z", "2026-10-03T18:22:05+01:00",
        "2026-10-03T18:22:05.Z", "26-10-03T18:22:05Z", "",
    ])
    func invalid(_ text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test("format and parse agree over centuries")
    func roundTrip() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let seconds = Int64.random(in: -2_000_000_000...10_000_000_000, using: &rng)
            #expect(Timestamp.parse(Timestamp.format(seconds)) == seconds)
        }
    }
}
