/// The byte layout of one member's answers inside a ``Population``: the
/// columns the scoring kernel reads for every candidate that passes the
/// filters, and nothing else.
///
/// Questions are grouped in chunks of 16 (one SSE register). A chunk is 48
/// bytes: 16 answer bits (`1 << option`, 0 when skipped), 16 accept masks (0
/// when skipped), 16 weights (`W[importance]`, 0 when skipped; 0 also for an
/// answered irrelevant question, which still counts in `n` through its answer
/// bit). Q = 100 takes 7 chunks, 336 bytes. Padding questions are all zero.
enum AnswerRow {
    static let questionsPerChunk = 16
    static let bytesPerChunk = 48
    static let acceptOffset = 16
    static let weightOffset = 32

    static func chunkCount(questions: Int) -> Int {
        (questions + questionsPerChunk - 1) / questionsPerChunk
    }

    /// Writes `answers` (valid for the survey) into a zeroed row.
    static func encode(_ answers: [Answer], into row: UnsafeMutableRawPointer) {
        for answer in answers {
            let offset = (answer.question / questionsPerChunk) * bytesPerChunk + answer.question % questionsPerChunk
            row.storeBytes(of: UInt8(1) << UInt8(answer.option), toByteOffset: offset, as: UInt8.self)
            row.storeBytes(of: answer.accepted.rawValue, toByteOffset: offset + acceptOffset, as: UInt8.self)
            row.storeBytes(of: UInt8(answer.importance.weight), toByteOffset: offset + weightOffset, as: UInt8.self)
        }
    }

    /// The answers a row holds, in question order.
    static func decode(_ row: UnsafeRawPointer, questions: Int) -> [Answer] {
        var answers: [Answer] = []
        for q in 0..<questions {
            let offset = (q / questionsPerChunk) * bytesPerChunk + q % questionsPerChunk
            let bit = row.load(fromByteOffset: offset, as: UInt8.self)
            if bit == 0 { continue }
            let accept = row.load(fromByteOffset: offset + acceptOffset, as: UInt8.self)
            let weight = Int(row.load(fromByteOffset: offset + weightOffset, as: UInt8.self))
            let importance = Importance(rawValue: UInt8(Importance.weights.firstIndex(of: weight)!))!
            answers.append(Answer(
                question: q, option: bit.trailingZeroBitCount,
                accepted: OptionSet8(rawValue: accept), importance: importance))
        }
        return answers
    }
}

/// The hard-filter fields of one member packed into 32 bits, so that the
/// filter pass reads 4 bytes per candidate:
///
///     bits 0-2   gender, one bit (1 << Gender.rawValue)
///     bits 4-6   seeking, a GenderSet
///     bits 8-14  age
///     bits 16-22 age_min
///     bits 24-30 age_max
///
/// An empty slot is 0: it has no gender bit, so no one seeks it.
enum FilterWord {
    static func make(_ member: Member) -> UInt32 {
        UInt32(1) << UInt32(member.gender.rawValue)
            | UInt32(member.seeking.rawValue) << 4
            | UInt32(member.age) << 8
            | UInt32(member.ageMin) << 16
            | UInt32(member.ageMax) << 24
    }

    static func gender(_ word: UInt32) -> Gender { Gender(rawValue: UInt8((word & 0b111).trailingZeroBitCount))! }
    static func seeking(_ word: UInt32) -> GenderSet { GenderSet(rawValue: UInt8((word >> 4) & 0b111)) }
    static func age(_ word: UInt32) -> Int { Int((word >> 8) & 0x7F) }
    static func ageMin(_ word: UInt32) -> Int { Int((word >> 16) & 0x7F) }
    static func ageMax(_ word: UInt32) -> Int { Int((word >> 24) & 0x7F) }
}
