import Scoring

/// A member's answers as the `members.answers` column stores them: two bytes
/// per survey question, dense, in question order (`2 * Q` bytes, 200 at
/// Q = 100).
///
///     byte 0: 0 when the question was skipped, else
///             0x80 | importance << 3 | option      (importance 0-4, option 0-7)
///     byte 1: the accept mask, bit o set when option o is accepted (0 when skipped)
///
/// One BLOB per member instead of one row per answer. Measured with
/// `kindred-bench store layout --members 20000` (Q = 100, 88.9 answers per
/// member, batches of 1000 members, release build, same server, four runs):
/// the blob stores 37,000-94,000 members/s against 2,900-4,000 (13-24x
/// faster), loads 287,000-574,000 members/s against 46,000-67,000 (6-9x),
/// and takes 6.7 MB against 54.6 MB (8.1x less). A member
/// is one row to write, lock and read; per-answer rows cost ~89 index
/// entries each, and the snapshot needs all of a member's answers at once
/// anyway. The price: no SQL query can look inside answers (none needs to).
package enum PackedAnswers {
    /// The packed form of `answers` for a survey of `questions` questions.
    /// The answers must be valid for the survey (``Scoring/Survey/validate(_:)``).
    package static func encode(_ answers: [Answer], questions: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 2 * questions)
        for answer in answers {
            bytes[2 * answer.question] = 0x80 | answer.importance.rawValue << 3 | UInt8(answer.option)
            bytes[2 * answer.question + 1] = answer.accepted.rawValue
        }
        return bytes
    }

    /// The answers held by `bytes`, in question order. Checks the layout
    /// (length, marker bits, importance, a skipped question's empty mask);
    /// option and accept ranges are the survey's to check
    /// (``Scoring/Survey/validate(_:)``). Errors name the question, not values.
    package static func decode(
        _ bytes: UnsafeRawBufferPointer, questions: Int
    ) throws(MemberValidationError) -> [Answer] {
        guard bytes.count == 2 * questions else {
            throw MemberValidationError(
                field: "answers",
                reason: "packed answers are \(bytes.count) bytes, the survey needs \(2 * questions)")
        }
        var answers: [Answer] = []
        answers.reserveCapacity(questions)
        for q in 0..<questions {
            let head = bytes[2 * q]
            let accept = bytes[2 * q + 1]
            if head == 0 {
                guard accept == 0 else {
                    throw MemberValidationError(field: "answers[q=\(q)]", reason: "a skipped question has an accept mask")
                }
                continue
            }
            let importance = (head >> 3) & 0x7
            guard head & 0xC0 == 0x80, importance <= 4 else {
                throw MemberValidationError(field: "answers[q=\(q)]", reason: "malformed packed answer")
            }
            answers.append(Answer(
                question: q, option: Int(head & 0x7), accepted: OptionSet8(rawValue: accept),
                importance: Importance(rawValue: importance)!))
        }
        return answers
    }

    package static func decode(_ bytes: [UInt8], questions: Int) throws(MemberValidationError) -> [Answer] {
        var result: Result<[Answer], MemberValidationError> = .success([])
        bytes.withUnsafeBytes { raw in
            result = Result { () throws(MemberValidationError) in try decode(raw, questions: questions) }
        }
        return try result.get()
    }
}

/// A 64-bit digest of everything about a member that affects matches:
/// gender, seeking, age, age range, the packed answers and the sorted,
/// de-duplicated blocked ids. `last_active` is left out: activity alone
/// changes no score.
///
/// FNV-1a 64 over a fixed little-endian encoding with a format byte, so the
/// value is the same on every run and platform. Generation bookkeeping
/// stores the version a set was computed from; a set is stale when the
/// member's version differs.
package enum AnswersVersion {
    /// Bump when the encoding below changes (every stored version then differs once).
    static let format: UInt8 = 1

    package static func of(
        gender: Gender, seeking: GenderSet, age: Int, ageMin: Int, ageMax: Int,
        packedAnswers: [UInt8], sortedBlocked: [MemberID]
    ) -> UInt64 {
        var hash = FNV1a64()
        hash.add(format)
        hash.add(gender.rawValue)
        hash.add(seeking.rawValue)
        hash.add(UInt8(truncatingIfNeeded: age))
        hash.add(UInt8(truncatingIfNeeded: ageMin))
        hash.add(UInt8(truncatingIfNeeded: ageMax))
        hash.add(UInt32(packedAnswers.count))
        for byte in packedAnswers { hash.add(byte) }
        hash.add(UInt32(sortedBlocked.count))
        for id in sortedBlocked { hash.add(id) }
        return hash.value
    }
}

/// FNV-1a, 64 bits.
struct FNV1a64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    @inline(__always)
    mutating func add(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }

    mutating func add(_ word: UInt32) {
        add(UInt8(truncatingIfNeeded: word))
        add(UInt8(truncatingIfNeeded: word >> 8))
        add(UInt8(truncatingIfNeeded: word >> 16))
        add(UInt8(truncatingIfNeeded: word >> 24))
    }
}
