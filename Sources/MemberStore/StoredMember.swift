import MariaDBClient
import Scoring

/// A member in the form the `members` and `blocks` tables hold: the packed
/// answers, the blocked ids sorted and de-duplicated, and the answers
/// version computed from them.
struct PackedMember {
    let id: MemberID
    let gender: Gender
    let seeking: GenderSet
    let age: Int
    let ageMin: Int
    let ageMax: Int
    let lastActive: Int64?
    let answers: [UInt8]
    let blocked: [MemberID]
    let version: UInt64

    /// Packs a member that is valid for a survey of `questions` questions.
    init(_ member: Member, questions: Int) {
        id = member.id
        gender = member.gender
        seeking = member.seeking
        age = member.age
        ageMin = member.ageMin
        ageMax = member.ageMax
        lastActive = member.lastActive
        answers = PackedAnswers.encode(member.answers, questions: questions)
        blocked = member.blocked.count <= 1 ? member.blocked : Array(Set(member.blocked)).sorted()
        version = AnswersVersion.of(
            gender: gender, seeking: seeking, age: age, ageMin: ageMin, ageMax: ageMax, packedAnswers: answers,
            sortedBlocked: blocked)
    }
}

extension AnswersVersion {
    /// The answers version of `member` as stored against `survey`.
    package static func of(_ member: Member, survey: Survey) -> UInt64 {
        PackedMember(member, questions: survey.questionCount).version
    }
}

/// Decodes the scoring columns of a `members` row into a ``Scoring/Member``
/// and checks it against the survey: a row edited by hand into something
/// invalid is an error naming the field, never a crash.
enum MemberRowDecoder {
    /// Columns, in this order: id, gender, seeking, age, age_min, age_max,
    /// last_active, answers.
    static let columns = "m.id, m.gender, m.seeking, m.age, m.age_min, m.age_max, m.last_active, m.answers"

    static func decode(_ row: RowView, survey: Survey, blocked: [MemberID]) throws(MemberValidationError) -> Member {
        guard let rawID = row.uint(0), let id = MemberID(exactly: rawID) else {
            throw MemberValidationError(field: "id", reason: "must be a positive integer below 2^32")
        }
        guard let genderCode = row.uint(1), genderCode <= 2, let gender = Gender(rawValue: UInt8(genderCode)) else {
            throw MemberValidationError(field: "gender", reason: "unknown gender code")
        }
        guard let seekingBits = row.uint(2), seekingBits != 0, seekingBits <= 0b111 else {
            throw MemberValidationError(field: "seeking", reason: "must be a non-empty set of genders")
        }
        let age = Int(row.uint(3) ?? 0)
        let ageMin = Int(row.uint(4) ?? 0)
        let ageMax = Int(row.uint(5) ?? 0)
        let lastActive = row.int(6)
        let questions = survey.questionCount
        let answers: [Answer]
        do {
            answers = try row.withUnsafeBytes(7) { (bytes) throws(MemberValidationError) -> [Answer] in
                try PackedAnswers.decode(bytes, questions: questions)
            } ?? []
        } catch let error as MemberValidationError {
            throw error
        } catch {
            throw MemberValidationError(field: "answers", reason: "unreadable")
        }
        let member = Member(
            id: id, gender: gender, seeking: GenderSet(rawValue: UInt8(seekingBits)), age: age, ageMin: ageMin,
            ageMax: ageMax, lastActive: lastActive, answers: answers, blocked: blocked)
        try survey.validate(member)
        return member
    }
}
