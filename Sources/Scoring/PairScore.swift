/// Why a pair is not candidates for each other: the first hard filter of
/// SCORING.md that fails, in the contract's order.
public enum Exclusion: String, Sendable, Hashable, CaseIterable {
    /// `A.id == B.id`.
    case sameMember = "same_member"
    /// One side does not seek the other's gender.
    case seeking
    /// One side's age is outside the other's range.
    case age
    /// One side blocked the other.
    case blocked
    /// Fewer than `MIN_COMMON` questions answered by both.
    case tooFewCommon = "too_few_common"
    /// Enough common questions, but all of them irrelevant to one side
    /// (`dA == 0` or `dB == 0`).
    case noWeight = "no_weight"
}

/// The integer sums of SCORING.md for one pair, from A's side and B's side.
public struct PairSums: Sendable, Hashable {
    public var common: Int
    public var sA: Int64, dA: Int64, sB: Int64, dB: Int64

    public init(common: Int, sA: Int64, dA: Int64, sB: Int64, dB: Int64) {
        self.common = common
        self.sA = sA
        self.dA = dA
        self.sB = sB
        self.dB = dB
    }
}

/// What scoring a pair gives: a score, or the rule that excludes them.
public enum PairOutcome: Sendable, Hashable {
    case scored(tenths: Int, sums: PairSums)
    case excluded(Exclusion)

    public var tenths: Int? {
        if case .scored(let t, _) = self { return t }
        return nil
    }
}

extension Survey {
    /// The integer sums for a pair of valid members (checked with ``validate(_:)``).
    /// Costs O(Q) and allocates: meant for single pairs (the API's pair score),
    /// not for scans, which go through ``MatchFinder``.
    public func sums(_ a: Member, _ b: Member) -> PairSums {
        var bByQuestion = [Int](repeating: -1, count: questionCount)
        for (index, answer) in b.answers.enumerated() { bByQuestion[answer.question] = index }
        var result = PairSums(common: 0, sA: 0, dA: 0, sB: 0, dB: 0)
        for answerA in a.answers {
            let j = bByQuestion[answerA.question]
            if j < 0 { continue }
            let answerB = b.answers[j]
            result.common += 1
            let wA = Int64(answerA.importance.weight)
            let wB = Int64(answerB.importance.weight)
            result.dA += wA
            result.dB += wB
            if answerA.accepted.contains(answerB.option) { result.sA += wA }
            if answerB.accepted.contains(answerA.option) { result.sB += wB }
        }
        return result
    }

    /// The full SCORING.md decision for a pair of valid members: every hard
    /// filter in order, then the score. Symmetric in its result's score.
    public func outcome(_ a: Member, _ b: Member, settings: ScoringSettings) -> PairOutcome {
        if a.id == b.id { return .excluded(.sameMember) }
        if !a.seeking.contains(b.gender) || !b.seeking.contains(a.gender) { return .excluded(.seeking) }
        if !(a.ageMin...a.ageMax).contains(b.age) || !(b.ageMin...b.ageMax).contains(a.age) {
            return .excluded(.age)
        }
        if a.blocked.contains(b.id) || b.blocked.contains(a.id) { return .excluded(.blocked) }
        let s = sums(a, b)
        if s.common < settings.minCommon { return .excluded(.tooFewCommon) }
        if s.dA == 0 || s.dB == 0 { return .excluded(.noWeight) }
        return .scored(tenths: Score.tenths(n: s.common, sA: s.sA, dA: s.dA, sB: s.sB, dB: s.dB), sums: s)
    }
}
