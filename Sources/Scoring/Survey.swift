/// The survey: `Q` questions numbered `0 ..< Q`, question `q` with `k_q`
/// answer options numbered `0 ..< k_q` (SCORING.md).
public struct Survey: Sendable, Hashable {
    /// `k_q` for every question, indexed by question number.
    public let optionCounts: [Int]

    public static let questionLimit = 1...512
    public static let optionLimit = 2...8

    /// A survey with `optionCounts[q]` options for question `q`.
    public init(optionCounts: [Int]) throws(SurveyError) {
        guard Survey.questionLimit.contains(optionCounts.count) else {
            throw SurveyError("a survey has 1 to 512 questions, not \(optionCounts.count)")
        }
        for (q, k) in optionCounts.enumerated() where !Survey.optionLimit.contains(k) {
            throw SurveyError("question \(q): options must be 2 to 8, not \(k)")
        }
        self.optionCounts = optionCounts
    }

    public var questionCount: Int { optionCounts.count }
}

/// A survey that breaks SCORING.md's rules.
public struct SurveyError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A member that breaks SCORING.md's rules, naming the field and the rule but
/// never the member's values (member data is personal).
public struct MemberValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The offending field as a path: `age_min`, `answers[3].accept`.
    public let field: String
    /// What rule it breaks.
    public let reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

extension Survey {
    /// Checks every rule of SCORING.md's member line that does not concern the
    /// JSON syntax itself: id range, ages, seeking, each answer against this
    /// survey, blocked ids. Messages name fields, never values.
    public func validate(_ member: Member) throws(MemberValidationError) {
        if member.id == 0 {
            throw MemberValidationError(field: "id", reason: "must be a positive integer below 2^32")
        }
        if !Member.ageRange.contains(member.age) {
            throw MemberValidationError(field: "age", reason: "must be an integer from 18 to 120")
        }
        if !Member.ageRange.contains(member.ageMin) {
            throw MemberValidationError(field: "age_min", reason: "must be an integer from 18 to 120")
        }
        if !Member.ageRange.contains(member.ageMax) {
            throw MemberValidationError(field: "age_max", reason: "must be an integer from 18 to 120")
        }
        if member.ageMin > member.ageMax {
            throw MemberValidationError(field: "age_min", reason: "must not be greater than age_max")
        }
        if member.seeking.isEmpty {
            throw MemberValidationError(field: "seeking", reason: "must name at least one gender")
        }
        // One bit per question, on the stack (Q <= 512).
        var seen: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        for (index, answer) in member.answers.enumerated() {
            guard answer.question >= 0, answer.question < questionCount else {
                throw MemberValidationError(field: "answers[\(index)].q", reason: "unknown question")
            }
            let answeredTwice = withUnsafeMutableBytes(of: &seen) { raw in
                let words = raw.bindMemory(to: UInt64.self)
                let bit = UInt64(1) << UInt64(answer.question & 63)
                defer { words[answer.question >> 6] |= bit }
                return words[answer.question >> 6] & bit != 0
            }
            if answeredTwice {
                throw MemberValidationError(
                    field: "answers[\(index)].q", reason: "question \(answer.question) answered twice")
            }
            let k = optionCounts[answer.question]
            if answer.option < 0 || answer.option >= k {
                throw MemberValidationError(
                    field: "answers[\(index)].answer",
                    reason: "out of range for question \(answer.question) (\(k) options)")
            }
            if answer.accepted.isEmpty {
                throw MemberValidationError(field: "answers[\(index)].accept", reason: "must not be empty")
            }
            if Int(answer.accepted.rawValue) >> k != 0 {
                throw MemberValidationError(
                    field: "answers[\(index)].accept",
                    reason: "option out of range for question \(answer.question) (\(k) options)")
            }
        }
        if member.blocked.contains(0) {
            throw MemberValidationError(field: "blocked", reason: "ids must be positive integers below 2^32")
        }
    }
}
