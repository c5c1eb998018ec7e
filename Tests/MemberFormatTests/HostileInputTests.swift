import MemberFormat
import Scoring
import Testing
import TestSupport

/// Parses a line given as bytes (it may hold bytes a String cannot).
func parse(bytes: [UInt8]) -> Result<Member, MemberLineError> {
    bytes.withUnsafeBufferPointer { MemberParser(survey: testSurvey).parse($0) }
}

/// `validLine` with `"note": VALUE` added before its closing brace, and the
/// 1-based column where VALUE starts.
func withNote(_ value: [UInt8]) -> (line: [UInt8], valueColumn: Int) {
    var line = Array(validLine.utf8.dropLast())
    line += Array(#", "note": "#.utf8)
    let column = line.count + 1
    return (line + value + [UInt8(ascii: "}")], column)
}

/// The reason of a rejected line (a failure to reject is an issue).
func rejection(_ result: Result<Member, MemberLineError>, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    switch result {
    case .success:
        Issue.record("accepted", sourceLocation: sourceLocation)
        return ""
    case .failure(let error):
        return error.description
    }
}

@Suite("Hostile input: nesting", .offCooperativePool)
struct NestingTests {
    @Test("150,000 levels of '[' in an unknown field: rejected at the 65th level's column, no crash")
    func deepUnknownField() {
        let (line, column) = withNote(Array(repeating: UInt8(ascii: "["), count: 150_000))
        // The line's object is level 1, so the note's 64th '[' opens level 65.
        #expect(rejection(parse(bytes: line)) == "nested deeper than 64 levels at column \(column + 63) (member 17)")
        let closed = withNote(Array(repeating: UInt8(ascii: "["), count: 150_000) + Array(repeating: UInt8(ascii: "]"), count: 150_000))
        #expect(rejection(parse(bytes: closed.line)).hasPrefix("nested deeper than 64 levels at column \(closed.valueColumn + 63)"))
    }

    @Test("70,000 levels in every known field and in an answer: rejected naming the column", arguments: [
        "id", "gender", "seeking", "age", "last_active", "answers", "blocked",
    ])
    func deepKnownField(_ field: String) {
        let deep = String(repeating: "[", count: 70_000)
        var line = #"{"\#(field)": "#
        let column = line.utf8.count + 64  // the field's value is level 2
        line += deep
        #expect(rejection(parse(line)) == "nested deeper than 64 levels at column \(column)")
    }

    @Test("nesting inside an answer counts the levels above it")
    func deepInsideAnswer() {
        let prefix = #"{"id": 5, "answers": [{"q": 0, "x": "#
        let line = prefix + String(repeating: "{\"a\":", count: 100_000)
        // Levels: line 1, answers 2, the answer 3, so the 62nd '{' is level 65.
        let column = prefix.utf8.count + 61 * 5 + 1
        #expect(rejection(parse(line)) == "nested deeper than 64 levels at column \(column) (member 5)")
    }

    @Test("64 levels are accepted, 65 are not; objects and arrays alike")
    func limit() throws {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let fits = String(repeating: open, count: 63) + "1" + String(repeating: close, count: 63)
            #expect(try parse(bytes: withNote(Array(fits.utf8)).line).get().id == 17)
            let over = String(repeating: open, count: 64) + "1" + String(repeating: close, count: 64)
            #expect(rejection(parse(bytes: withNote(Array(over.utf8)).line)).hasPrefix("nested deeper than 64 levels"))
        }
    }

    @Test("skipping stays as strict as reading: bad syntax deep inside an unknown field is rejected")
    func strictSkipping() {
        for value in ["[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{1:2}", "[[[]]", "[{]}", "[\"\\x\"]", "[01]", "[tru]", "{\"a\":[}]"] {
            #expect(rejection(parse(bytes: withNote(Array(value.utf8)).line)).hasPrefix("malformed JSON at column"), "\(value)")
        }
        #expect(throws: Never.self) { try parse(bytes: withNote(Array(#"{"a": [1, -2.5e3, "x\u00e9", true, null, {}, []], "b": {"c": false}}"#.utf8)).line).get() }
    }

    @Test("a survey file nested 100,000 levels deep is refused naming the column")
    func deepSurvey() {
        let text = #"{"questions": [{"id": 0, "options": 2}], "x": "# + String(repeating: "[", count: 100_000)
        #expect {
            try SurveyFormat.parse(text)
        } throws: { error in
            "\(error)" == "nested deeper than 64 levels at column \(#"{"questions": [{"id": 0, "options": 2}], "x": "#.utf8.count + 64)"
        }
    }
}

@Suite("Hostile input: UTF-8", .offCooperativePool)
struct UTF8Tests {
    /// Sequences that are not UTF-8, each with why.
    static let invalid: [([UInt8], String)] = [
        ([0x80], "a lone continuation byte"),
        ([0xBF], "a lone continuation byte"),
        ([0xC0, 0x80], "overlong NUL"),
        ([0xC1, 0xBF], "overlong two-byte"),
        ([0xE0, 0x80, 0x80], "overlong three-byte"),
        ([0xE0, 0x9F, 0xBF], "overlong three-byte, highest"),
        ([0xED, 0xA0, 0x80], "surrogate D800"),
        ([0xED, 0xBF, 0xBF], "surrogate DFFF"),
        ([0xF0, 0x80, 0x80, 0x80], "overlong four-byte"),
        ([0xF0, 0x8F, 0xBF, 0xBF], "overlong four-byte, highest"),
        ([0xF4, 0x90, 0x80, 0x80], "past U+10FFFF"),
        ([0xF5, 0x80, 0x80, 0x80], "lead byte F5"),
        ([0xFE], "FE"),
        ([0xFF], "FF"),
        ([0xC3], "two-byte cut short"),
        ([0xE2, 0x82], "three-byte cut short"),
        ([0xF0, 0x9F, 0x98], "four-byte cut short"),
        ([0xC3, 0x41], "a lead byte before ASCII"),
        ([0xE2, 0x28, 0xA1], "a bad second byte"),
    ]

    /// Boundary sequences that are UTF-8.
    static let valid: [[UInt8]] = [
        [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80],
        [0xEF, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], Array("é中😀".utf8),
    ]

    @Test("invalid UTF-8 in a string is rejected at its column, on the fast path and after an escape", arguments: invalid)
    func invalidInString(_ sequence: [UInt8], _ why: String) {
        let quote = UInt8(ascii: "\"")
        // Plain string: ASCII before the bad bytes.
        let plain = withNote([quote, UInt8(ascii: "a"), UInt8(ascii: "b")] + sequence + [quote])
        #expect(rejection(parse(bytes: plain.line)) == "invalid UTF-8 at column \(plain.valueColumn + 3) (member 17)", "\(why)")
        // After an escape: the slow path.
        let escaped = withNote([quote] + Array(#"\n"#.utf8) + sequence + [UInt8(ascii: "z"), quote])
        #expect(rejection(parse(bytes: escaped.line)) == "invalid UTF-8 at column \(escaped.valueColumn + 3) (member 17)", "\(why)")
        // Inside a list in an unknown field (skipped, still checked).
        let listed = withNote(Array(#"[1, {"k": ""#.utf8) + sequence + Array(#""}]"#.utf8))
        #expect(rejection(parse(bytes: listed.line)).hasPrefix("invalid UTF-8 at column \(listed.valueColumn + 11)"), "\(why)")
    }

    @Test("invalid UTF-8 in a key, a known field's string or the survey is rejected", arguments: invalid)
    func invalidElsewhere(_ sequence: [UInt8], _ why: String) {
        let key = Array(#"{"id": 3, "n"#.utf8) + sequence + Array(#"": 1}"#.utf8)
        #expect(rejection(parse(bytes: key)) == "invalid UTF-8 at column 13 (member 3)", "\(why)")
        let gender = Array(#"{"gender": "man"#.utf8) + sequence + Array(#""}"#.utf8)
        #expect(rejection(parse(bytes: gender)) == "invalid UTF-8 at column 16", "\(why)")
        let seeking = Array(#"{"seeking": ["\u0041"#.utf8) + sequence + Array(#""]}"#.utf8)
        #expect(rejection(parse(bytes: seeking)) == "invalid UTF-8 at column 21", "\(why)")
        let timestamp = Array(#"{"last_active": "2026-10-03T18:22:05Z"#.utf8) + sequence + Array(#""}"#.utf8)
        #expect(rejection(parse(bytes: timestamp)) == "invalid UTF-8 at column 38", "\(why)")
        let surveyPrefix = Array(#"{"questions": [{"id": 0, "options": 2}], "title": ""#.utf8)
        let survey = surveyPrefix + sequence + Array(#""}"#.utf8)
        #expect {
            try survey.withUnsafeBufferPointer { (bytes) throws(SurveyError) in try SurveyFormat.parse(bytes) }
        } throws: { error in
            "\(error)" == "invalid UTF-8 at column \(surveyPrefix.count + 1)"
        }
    }

    @Test("UTF-8 at the edges of each range is accepted, in values and keys", arguments: valid)
    func validSequences(_ sequence: [UInt8]) throws {
        let quote = UInt8(ascii: "\"")
        #expect(try parse(bytes: withNote([quote] + sequence + [quote]).line).get().id == 17)
        #expect(try parse(bytes: withNote([quote, UInt8(ascii: "\\"), UInt8(ascii: "t")] + sequence + [quote]).line).get().id == 17)
        #expect(try parse(bytes: withNote([UInt8(ascii: "{"), quote] + sequence + Array(#"": 1}"#.utf8)).line).get().id == 17)
    }

    @Test("the validator agrees with the standard library's on random byte strings")
    func agreesWithStandardLibrary() {
        var state: UInt64 = 0x1234_5678_9ABC_DEF0
        func next() -> UInt64 {
            // SplitMix64: deterministic, so a failure repeats.
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let interesting: [UInt8] = [0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        var disagreements = 0
        for _ in 0..<20_000 {
            let count = Int(next() % 6) + 1
            let value = (0..<count).map { _ in interesting[Int(next() % UInt64(interesting.count))] }
            let standard = String(validating: value, as: UTF8.self) != nil
            let quote = UInt8(ascii: "\"")
            let ours: Bool
            switch parse(bytes: withNote([quote] + value + [quote]).line) {
            case .success: ours = true
            case .failure(let error): ours = !error.description.hasPrefix("invalid UTF-8")
            }
            if ours != standard {
                disagreements += 1
                if disagreements <= 5 { Issue.record("\(value.map { String($0, radix: 16) }): ours \(ours), standard \(standard)") }
            }
        }
        #expect(disagreements == 0)
    }

    @Test("errors name the column, never the bytes")
    func noEcho() {
        let secret = Array("Geheimnis".utf8) + [0xFF]
        let (line, _) = withNote([UInt8(ascii: "\"")] + secret + [UInt8(ascii: "\"")])
        let reason = rejection(parse(bytes: line))
        #expect(!reason.contains("Geheimnis") && !reason.contains("\u{FFFD}"))
    }
}
