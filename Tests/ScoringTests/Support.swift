import Foundation
import Scoring

/// Builders for hand-worked members.
func answer(_ q: Int, _ option: Int, accept: [Int], _ importance: Int) -> Answer {
    Answer(question: q, option: option, accepted: OptionSet8(accept), importance: Importance(rawValue: UInt8(importance))!)
}

func member(
    _ id: MemberID, _ gender: Gender = .woman, seeking: GenderSet = [.man], age: Int = 30,
    ages: ClosedRange<Int> = 18...120, answers: [Answer] = [], blocked: [MemberID] = []
) -> Member {
    Member(
        id: id, gender: gender, seeking: seeking, age: age, ageMin: ages.lowerBound, ageMax: ages.upperBound,
        lastActive: nil, answers: answers, blocked: blocked)
}

/// `count` questions answered `option`, accepting `accept`, at `importance`.
func uniformAnswers(_ count: Int, option: Int = 0, accept: [Int] = [0], importance: Int = 2, from first: Int = 0)
    -> [Answer]
{
    (first..<first + count).map { answer($0, option, accept: accept, importance) }
}

func survey(questions: Int, options: Int = 4) -> Survey {
    try! Survey(optionCounts: Array(repeating: options, count: questions))
}

/// The importance level for a weight of W.
func importance(weight: Int) -> Int { Importance.weights.firstIndex(of: weight)! }

/// A plain, obviously-correct implementation of SCORING.md, sharing no code
/// with the engine: dictionaries, a loop per rule, the formula written out.
enum Reference {
    static func score(_ a: Member, _ b: Member, minCommon: Int) -> Int? {
        if a.id == b.id { return nil }
        if !a.seeking.contains(b.gender) || !b.seeking.contains(a.gender) { return nil }
        if b.age < a.ageMin || b.age > a.ageMax || a.age < b.ageMin || a.age > b.ageMax { return nil }
        if a.blocked.contains(b.id) || b.blocked.contains(a.id) { return nil }
        var bAnswers: [Int: Answer] = [:]
        for x in b.answers { bAnswers[x.question] = x }
        let w: [Int64] = [0, 1, 10, 50, 250]
        var n = 0
        var sA: Int64 = 0, dA: Int64 = 0, sB: Int64 = 0, dB: Int64 = 0
        for x in a.answers {
            guard let y = bAnswers[x.question] else { continue }
            n += 1
            dA += w[Int(x.importance.rawValue)]
            dB += w[Int(y.importance.rawValue)]
            if x.accepted.options.contains(y.option) { sA += w[Int(x.importance.rawValue)] }
            if y.accepted.options.contains(x.option) { sB += w[Int(y.importance.rawValue)] }
        }
        if n < minCommon || dA == 0 || dB == 0 { return nil }
        let m = sqrt(Double(sA * sB) / Double(dA * dB)) - 1.0 / Double(n)
        let t = floor(100.0 * m + 0.5)
        return Int(min(100, max(0, t)))
    }

    static func matches(_ a: Member, among population: [Member], settings: ScoringSettings) -> [Match] {
        var found: [(t: Int, id: MemberID)] = []
        for b in population {
            if let t = score(a, b, minCommon: settings.minCommon), t >= settings.minScore { found.append((t, b.id)) }
        }
        found.sort { $0.t != $1.t ? $0.t > $1.t : $0.id < $1.id }
        return found.prefix(settings.topN).map { Match(id: $0.id, tenths: $0.t) }
    }
}

/// A reproducible generator for property tests.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random members designed to exercise every rule often: narrow age bands
/// so that age filters both pass and fail, every seeking combination, some
/// sparse answer sheets (pairs below MIN_COMMON), some all-irrelevant sheets
/// (dA == 0), blocks among the population, ids spread over 32 bits.
struct RandomPopulation {
    let survey: Survey
    var members: [Member]

    init(seed: UInt64, size: Int, questions: Int? = nil) {
        var rng = TestRNG(seed: seed)
        let q = questions ?? [1, 3, 7, 16, 17, 33, 100][Int.random(in: 0..<7, using: &rng)]
        let survey = try! Survey(optionCounts: (0..<q).map { _ in Int.random(in: 2...8, using: &rng) })
        self.survey = survey
        var ids = Set<MemberID>()
        while ids.count < size {
            ids.insert(Bool.random(using: &rng) ? MemberID.random(in: 1...2000, using: &rng) : MemberID.random(in: 1...MemberID.max, using: &rng))
        }
        let idList = Array(ids)
        members = idList.map { id in
            let gender = Gender.allCases.randomElement(using: &rng)!
            let seeking = GenderSet(rawValue: UInt8.random(in: 1...7, using: &rng))
            let age = Int.random(in: 18...26, using: &rng)
            let low = Int.random(in: 18...age, using: &rng)
            let high = Int.random(in: age...120, using: &rng)
            let answerRate = [0.1, 0.5, 0.9, 1.0].randomElement(using: &rng)!
            let irrelevantOnly = Int.random(in: 0..<20, using: &rng) == 0
            var answers: [Answer] = []
            for question in 0..<q where Double.random(in: 0..<1, using: &rng) < answerRate {
                let k = survey.optionCounts[question]
                var accept = UInt8.random(in: 1...UInt8((1 << k) - 1), using: &rng)
                if Bool.random(using: &rng) { accept = 1 << UInt8.random(in: 0..<UInt8(k), using: &rng) }
                answers.append(Answer(
                    question: question, option: Int.random(in: 0..<k, using: &rng),
                    accepted: OptionSet8(rawValue: accept),
                    importance: irrelevantOnly ? .irrelevant : Importance.allCases.randomElement(using: &rng)!))
            }
            answers.shuffle(using: &rng)
            var blocked: [MemberID] = []
            if Int.random(in: 0..<10, using: &rng) == 0 {
                blocked = (0..<Int.random(in: 1...3, using: &rng)).map { _ in idList.randomElement(using: &rng)! }
                if Bool.random(using: &rng) { blocked.append(MemberID.random(in: 1...MemberID.max, using: &rng)) }
            }
            return Member(
                id: id, gender: gender, seeking: seeking, age: age, ageMin: low, ageMax: high,
                lastActive: nil, answers: answers, blocked: blocked)
        }
    }
}
