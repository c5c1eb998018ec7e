import Scoring

/// Why a member line was rejected: the field (as a path such as
/// `answers[3].accept`) and the rule it breaks, plus the member id when the
/// line had a usable one. Never the member's values: member data is personal.
package struct MemberLineError: Error, Sendable, Hashable, CustomStringConvertible {
    package let memberID: MemberID?
    /// The offending field, or nil for a line that is not a JSON object at all.
    package let field: String?
    package let reason: String

    package init(memberID: MemberID?, field: String?, reason: String) {
        self.memberID = memberID
        self.field = field
        self.reason = reason
    }

    /// `age_min: must not be greater than age_max (member 17)`.
    package var description: String {
        var text = field.map { "\($0): \(reason)" } ?? reason
        if let memberID { text += " (member \(memberID))" }
        return text
    }
}

/// Parses member lines of the import format (SCORING.md) against a survey,
/// applying every line rule. One parser per thread; it keeps scratch buffers
/// between lines so that a line allocates little beyond the member itself.
///
/// The parser reads the whole line even after finding a problem, so that the
/// error can name the member id wherever the `id` field stands; the first
/// problem in line order is the one reported. Unknown fields are ignored
/// once read as strictly as the rest: valid JSON, strict UTF-8, at most 64
/// levels deep over the whole line (`JSONReader`), so a hostile line is a
/// rejection naming its column, never a crash.
package final class MemberParser {
    package let survey: Survey
    private var key: [UInt8] = []
    private var answerKey: [UInt8] = []
    private var text: [UInt8] = []

    package init(survey: Survey) {
        self.survey = survey
        key.reserveCapacity(32)
        text.reserveCapacity(64)
    }

    package func parse(_ line: String) -> Result<Member, MemberLineError> {
        var copy = line
        return copy.withUTF8 { self.parse($0) }
    }

    /// Parses one line (without its newline).
    package func parse(_ line: UnsafeBufferPointer<UInt8>) -> Result<Member, MemberLineError> {
        var state = State()
        var reader = JSONReader(line)
        do throws(JSONReader.SyntaxError) {
            guard reader.peek() == .object else { throw reader.error("a JSON object") }
            try reader.readObject(key: &key) { (r: inout JSONReader, name: UnsafeBufferPointer<UInt8>) throws(JSONReader.SyntaxError) in
                try readField(name, &r, &state)
            }
            try reader.expectEnd()
        } catch {
            return .failure(MemberLineError(memberID: state.id, field: nil, reason: error.description))
        }
        return state.finish(survey: survey)
    }

    /// The fields of a member line.
    private enum Field: Int, CaseIterable {
        case id, gender, seeking, age, ageMin, ageMax, lastActive, answers, blocked

        var name: String {
            switch self {
            case .id: "id"
            case .gender: "gender"
            case .seeking: "seeking"
            case .age: "age"
            case .ageMin: "age_min"
            case .ageMax: "age_max"
            case .lastActive: "last_active"
            case .answers: "answers"
            case .blocked: "blocked"
            }
        }

        static let utf8Names: [[UInt8]] = allCases.map { Array($0.name.utf8) }

        init?(_ bytes: UnsafeBufferPointer<UInt8>) {
            guard let index = Field.utf8Names.firstIndex(where: { $0.elementsEqual(bytes) }) else { return nil }
            self = Field.allCases[index]
        }
    }

    private enum AnswerField: Int, CaseIterable {
        case q, answer, accept, importance
        var name: String { ["q", "answer", "accept", "importance"][rawValue] }
        init?(_ bytes: UnsafeBufferPointer<UInt8>) {
            // One byte tells them apart: q, answer, accept, importance.
            switch bytes.count {
            case 1 where bytes[0] == UInt8(ascii: "q"): self = .q
            case 6 where bytes.elementsEqual("answer".utf8): self = .answer
            case 6 where bytes.elementsEqual("accept".utf8): self = .accept
            case 10 where bytes.elementsEqual("importance".utf8): self = .importance
            default: return nil
            }
        }
    }

    /// What the line has said so far.
    private struct State {
        var seen: Set<Int> = []
        var id: MemberID?
        var gender: Gender?
        var seeking: GenderSet?
        var age: Int?
        var ageMin: Int?
        var ageMax: Int?
        var lastActive: Int64?
        var answers: [Answer]?
        var blocked: [MemberID] = []
        /// The first rule broken, in line order.
        var problem: (field: String, reason: String)?

        mutating func fail(_ field: @autoclosure () -> String, _ reason: String) {
            if problem == nil { problem = (field(), reason) }
        }

        func finish(survey: Survey) -> Result<Member, MemberLineError> {
            if let problem { return .failure(MemberLineError(memberID: id, field: problem.field, reason: problem.reason)) }
            guard let id else { return missing("id") }
            guard let gender else { return missing("gender") }
            guard let seeking else { return missing("seeking") }
            guard let age else { return missing("age") }
            guard let ageMin else { return missing("age_min") }
            guard let ageMax else { return missing("age_max") }
            guard let answers else { return missing("answers") }
            let member = Member(
                id: id, gender: gender, seeking: seeking, age: age, ageMin: ageMin, ageMax: ageMax,
                lastActive: lastActive, answers: answers, blocked: blocked)
            do {
                try survey.validate(member)
            } catch {
                return .failure(MemberLineError(memberID: id, field: error.field, reason: error.reason))
            }
            return .success(member)
        }

        private func missing(_ field: String) -> Result<Member, MemberLineError> {
            .failure(MemberLineError(memberID: id, field: field, reason: "is required"))
        }
    }

    private func readField(
        _ name: UnsafeBufferPointer<UInt8>, _ r: inout JSONReader, _ state: inout State
    ) throws(JSONReader.SyntaxError) {
        guard let field = Field(name) else {
            try r.skipValue(scratch: &text)
            return
        }
        if !state.seen.insert(field.rawValue).inserted {
            state.fail(field.name, "given twice")
            try r.skipValue(scratch: &text)
            return
        }
        switch field {
        case .id:
            if let value = try readInteger(&r), value >= 1, value <= Int64(UInt32.max) {
                state.id = MemberID(value)
            } else {
                state.fail("id", "must be a positive integer below 2^32")
            }
        case .gender:
            if let gender = try readGender(&r) {
                state.gender = gender
            } else {
                state.fail("gender", "must be one of man, woman, nonbinary")
            }
        case .seeking:
            var set = GenderSet()
            var valid = r.peek() == .array
            if valid {
                try r.readArray { (r: inout JSONReader, _) throws(JSONReader.SyntaxError) in
                    if let gender = try readGender(&r) { set.insert(GenderSet(gender)) } else { valid = false }
                }
            } else {
                try r.skipValue(scratch: &text)
            }
            if valid && !set.isEmpty {
                state.seeking = set
            } else {
                state.fail("seeking", "must be a non-empty list of man, woman, nonbinary")
            }
        case .age, .ageMin, .ageMax:
            let value = try readInteger(&r)
            guard let value, Member.ageRange.contains(Int(clamping: value)) else {
                state.fail(field.name, "must be an integer from 18 to 120")
                return
            }
            switch field {
            case .age: state.age = Int(value)
            case .ageMin: state.ageMin = Int(value)
            default: state.ageMax = Int(value)
            }
        case .lastActive:
            switch r.peek() {
            case .null:
                _ = try r.readLiteral()
            case .string:
                try r.readString(into: &text)
                if let seconds = Timestamp.parse(text) {
                    state.lastActive = seconds
                } else {
                    state.fail("last_active", "must be an RFC 3339 UTC timestamp such as 2026-10-03T18:22:05Z")
                }
            default:
                try r.skipValue(scratch: &text)
                state.fail("last_active", "must be an RFC 3339 UTC timestamp such as 2026-10-03T18:22:05Z")
            }
        case .answers:
            guard r.peek() == .array else {
                try r.skipValue(scratch: &text)
                state.fail("answers", "must be a list (it may be empty)")
                return
            }
            var answers: [Answer] = []
            answers.reserveCapacity(survey.questionCount)
            try r.readArray { (r: inout JSONReader, index: Int) throws(JSONReader.SyntaxError) in
                if let answer = try readAnswer(&r, index: index, &state) { answers.append(answer) }
            }
            state.answers = answers
        case .blocked:
            switch r.peek() {
            case .null:
                _ = try r.readLiteral()
            case .array:
                var blocked: [MemberID] = []
                try r.readArray { (r: inout JSONReader, index: Int) throws(JSONReader.SyntaxError) in
                    if let value = try readInteger(&r), value >= 1, value <= Int64(UInt32.max) {
                        blocked.append(MemberID(value))
                    } else {
                        state.fail("blocked[\(index)]", "must be a positive integer below 2^32")
                    }
                }
                state.blocked = blocked
            default:
                try r.skipValue(scratch: &text)
                state.fail("blocked", "must be a list of member ids")
            }
        }
    }

    /// One `answers` entry; nil (with the problem recorded) when it breaks a rule.
    private func readAnswer(
        _ r: inout JSONReader, index: Int, _ state: inout State
    ) throws(JSONReader.SyntaxError) -> Answer? {
        // Paths are built only when a rule is broken: valid lines allocate no strings.
        func path() -> String { "answers[\(index)]" }
        guard r.peek() == .object else {
            try r.skipValue(scratch: &text)
            state.fail(path(), "must be an object with q, answer, accept, importance")
            return nil
        }
        var question: Int?
        var option: Int?
        var accept: UInt8?
        var importance: Importance?
        var seen: UInt8 = 0
        var ok = true
        try r.readObject(key: &answerKey) { (r: inout JSONReader, name: UnsafeBufferPointer<UInt8>) throws(JSONReader.SyntaxError) in
            guard let field = AnswerField(name) else {
                try r.skipValue(scratch: &text)
                return
            }
            func fieldPath() -> String { "\(path()).\(field.name)" }
            if seen & (1 << field.rawValue) != 0 {
                state.fail(fieldPath(), "given twice")
                ok = false
                try r.skipValue(scratch: &text)
                return
            }
            seen |= 1 << field.rawValue
            switch field {
            case .q:
                if let value = try readInteger(&r), value >= 0, value < Int64(survey.questionCount) {
                    question = Int(value)
                } else {
                    state.fail(fieldPath(), "unknown question")
                    ok = false
                }
            case .answer:
                if let value = try readInteger(&r), value >= 0, value < 8 {
                    option = Int(value)
                } else {
                    state.fail(fieldPath(), "must be an option number of the question")
                    ok = false
                }
            case .accept:
                guard r.peek() == .array else {
                    try r.skipValue(scratch: &text)
                    state.fail(fieldPath(), "must be a non-empty list of option numbers")
                    ok = false
                    return
                }
                var mask: UInt8 = 0
                var valid = true
                try r.readArray { (r: inout JSONReader, _) throws(JSONReader.SyntaxError) in
                    if let value = try readInteger(&r), value >= 0, value < 8 {
                        mask |= 1 << UInt8(value)
                    } else {
                        valid = false
                    }
                }
                if !valid {
                    state.fail(fieldPath(), "option out of range for the question")
                    ok = false
                } else if mask == 0 {
                    state.fail(fieldPath(), "must not be empty")
                    ok = false
                } else {
                    accept = mask
                }
            case .importance:
                if let value = try readInteger(&r), let level = Importance(rawValue: UInt8(clamping: value)),
                    value >= 0, value <= 4
                {
                    importance = level
                } else {
                    state.fail(fieldPath(), "must be an integer from 0 to 4")
                    ok = false
                }
            }
        }
        guard ok else { return nil }
        for field in AnswerField.allCases where seen & (1 << field.rawValue) == 0 {
            state.fail("\(path()).\(field.name)", "is required")
            return nil
        }
        return Answer(
            question: question!, option: option!, accepted: OptionSet8(rawValue: accept!), importance: importance!)
    }

    /// An integer value; nil (value consumed) for any other value.
    private func readInteger(_ r: inout JSONReader) throws(JSONReader.SyntaxError) -> Int64? {
        guard r.peek() == .number else {
            try r.skipValue(scratch: &text)
            return nil
        }
        return try r.readNumber().integer
    }

    /// A gender string; nil (value consumed) for anything else.
    private func readGender(_ r: inout JSONReader) throws(JSONReader.SyntaxError) -> Gender? {
        guard r.peek() == .string else {
            try r.skipValue(scratch: &text)
            return nil
        }
        if let plain = try r.readPlainString() {
            for gender in Gender.allCases where gender.name.utf8.elementsEqual(plain) { return gender }
            return nil
        }
        try r.readString(into: &text)
        for gender in Gender.allCases where gender.name.utf8.elementsEqual(text) { return gender }
        return nil
    }
}
