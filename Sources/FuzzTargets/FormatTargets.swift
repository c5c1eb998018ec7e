import MemberFormat
import Scoring

/// The import format's parsers (MemberFormat).
enum FormatTargets {
    /// 8 questions with 2 to 8 options: enough to reach every answer rule.
    static let survey = try! Survey(optionCounts: [2, 3, 4, 5, 6, 7, 8, 4])

    static func jsonReader(_ bytes: UnsafeBufferPointer<UInt8>) -> FuzzTarget.Outcome {
        guard let problem = JSONDocument.problem(bytes) else {
            // Outside strings a document is ASCII, and its strings were
            // checked: an accepted document is UTF-8 as a whole.
            require(String(validating: bytes, as: UTF8.self) != nil, "accepted a document that is not UTF-8")
            return .accepted
        }
        requireColumn(problem, count: bytes.count)
        return .rejected(problem)
    }

    static func memberLine(_ bytes: UnsafeBufferPointer<UInt8>) -> FuzzTarget.Outcome {
        let parser = MemberParser(survey: survey)
        switch parser.parse(bytes) {
        case .success(let member):
            // What the parser accepts, the writer writes and the parser reads back unchanged.
            let written = MemberWriter.line(member)
            let again = parser.parse(String(written.dropLast()))
            require(again == .success(member), "a parsed member does not survive writing and parsing again")
            require(JSONDocument.problem(bytes) == nil, "a member line the JSON reader alone refuses")
            return .accepted
        case .failure(let error):
            let message = error.description
            if error.field == nil { requireColumn(message, count: bytes.count) }
            requireNoEcho(message, String(decoding: bytes, as: UTF8.self))
            return .rejected(message)
        }
    }

    static func survey(_ bytes: UnsafeBufferPointer<UInt8>) -> FuzzTarget.Outcome {
        do {
            let parsed = try SurveyFormat.parse(bytes)
            require(try! SurveyFormat.parse(SurveyFormat.encode(parsed)) == parsed, "a survey does not survive encoding")
            return .accepted
        } catch {
            return .rejected(error.description)
        }
    }

    static func timestamp(_ bytes: UnsafeBufferPointer<UInt8>) -> FuzzTarget.Outcome {
        guard let seconds = Timestamp.parse(bytes) else { return .rejected("not an RFC 3339 UTC timestamp") }
        // Parsing truncates fractions; formatting gives whole seconds back.
        let formatted = Timestamp.format(seconds)
        require(Timestamp.parse(formatted) == seconds, "a parsed timestamp does not survive formatting")
        require(bytes.count >= 20 && formatted.utf8.prefix(19).elementsEqual(normalizedPrefix(bytes)), "a timestamp parsed to another instant")
        return .accepted
    }

    /// The first 19 bytes (`YYYY-MM-DDTHH:MM:SS`) with a lower-case `t` as `T`.
    private static func normalizedPrefix(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        bytes.prefix(19).map { $0 == UInt8(ascii: "t") ? UInt8(ascii: "T") : $0 }
    }

    /// A syntax error names a column inside the input (or just past it).
    private static func requireColumn(_ message: String, count: Int) {
        guard let range = message.firstRange(of: "at column ") else {
            preconditionFailure("a syntax error without a column")
        }
        let digits = message[range.upperBound...].prefix { $0.isNumber }
        require(Int(digits).map { (1...count + 1).contains($0) } ?? false, "a column outside the input")
    }
}
