import Scoring
import Testing
import TestSupport

/// Hand-worked pairs, one per rule of SCORING.md. Each expectation was
/// worked out on paper from the contract; the comment shows the arithmetic.
@Suite("Pair score: hand-worked pairs", .offCooperativePool)
struct PairScoreTests {
    let settings = ScoringSettings.default

    func tenths(_ a: Member, _ b: Member, _ s: Survey, settings: ScoringSettings = .default) -> Int? {
        let forward = s.outcome(a, b, settings: settings)
        let backward = s.outcome(b, a, settings: settings)
        #expect(forward.tenths == backward.tenths, "the score is symmetric")
        return forward.tenths
    }

    func exclusion(_ a: Member, _ b: Member, _ s: Survey, settings: ScoringSettings = .default) -> Exclusion? {
        if case .excluded(let why) = s.outcome(a, b, settings: settings) { return why }
        return nil
    }

    @Test("all accepted: m = 1 - 1/n")
    func allAccepted() {
        let s = survey(questions: 5)
        let a = member(1, .woman, seeking: [.man], answers: uniformAnswers(5))
        let b = member(2, .man, seeking: [.woman], answers: uniformAnswers(5))
        // n = 5, sA = dA = sB = dB = 50: m = 1 - 0.2 = 0.8, floor(80.5) = 80.
        #expect(tenths(a, b, s) == 80)
        #expect(Score.format(tenths: 80) == "8.0")
    }

    @Test("n below MIN_COMMON has no score; at MIN_COMMON it has one")
    func minCommon() {
        let s = survey(questions: 10)
        let a = member(1, .woman, answers: uniformAnswers(4))
        let b = member(2, .man, seeking: [.woman], answers: uniformAnswers(10))
        #expect(exclusion(a, b, s) == .tooFewCommon)
        let a5 = member(1, .woman, answers: uniformAnswers(5))
        #expect(tenths(a5, b, s) == 80)
        // A custom MIN_COMMON moves the line.
        #expect(exclusion(a5, b, s, settings: ScoringSettings(minCommon: 6)) == .tooFewCommon)
        #expect(tenths(a, b, s, settings: ScoringSettings(minCommon: 4)) == 75)  // 1 - 1/4 = 0.75
    }

    @Test("only questions both answered count: skipped on either side is not common")
    func commonQuestionsOnly() {
        let s = survey(questions: 10)
        // A answers 0..<7, B answers 3..<10: common 3..<7, n = 4.
        let a = member(1, .woman, answers: uniformAnswers(7))
        let b = member(2, .man, seeking: [.woman], answers: uniformAnswers(7, from: 3))
        #expect(exclusion(a, b, s) == .tooFewCommon)
        #expect(tenths(a, b, s, settings: ScoringSettings(minCommon: 4)) == 75)
    }

    @Test("dA == 0 or dB == 0: no score")
    func zeroDenominators() {
        let s = survey(questions: 6)
        let relevant = uniformAnswers(6)
        let irrelevant = uniformAnswers(6, importance: 0)
        let a = member(1, .woman, answers: irrelevant)
        let b = member(2, .man, seeking: [.woman], answers: relevant)
        #expect(exclusion(a, b, s) == .noWeight)  // dA == 0
        #expect(exclusion(b, a, s) == .noWeight)  // dB == 0 seen from B's side
        let c = member(3, .man, seeking: [.woman], answers: irrelevant)
        #expect(exclusion(a, c, s) == .noWeight)
    }

    @Test("importance-0 questions still count in n")
    func irrelevantQuestionsCountInN() {
        let s = survey(questions: 6)
        // q0..q4 irrelevant to both, q5 "somewhat" to both, all accepted.
        let answers = uniformAnswers(5, importance: 0) + [answer(5, 0, accept: [0], 2)]
        let a = member(1, .woman, answers: answers)
        let b = member(2, .man, seeking: [.woman], answers: answers)
        // n = 6 (not 1): sA = dA = sB = dB = 10, m = 1 - 1/6 = 0.8333..., floor(83.83) = 83.
        #expect(tenths(a, b, s) == 83)
    }

    @Test("an irrelevant question with an unacceptable answer costs nothing")
    func irrelevantMismatch() {
        let s = survey(questions: 6)
        let a = member(1, .woman, answers: uniformAnswers(5) + [answer(5, 0, accept: [3], 0)])
        let b = member(2, .man, seeking: [.woman], answers: uniformAnswers(6))
        // n = 6, sA = dA = 50, sB = dB = 60: m = 1 - 1/6, 83.
        #expect(tenths(a, b, s) == 83)
    }

    @Test("a mandatory mismatch is weight 250, not a filter")
    func mandatoryMismatchStillScored() {
        let s = survey(questions: 6)
        // A: q0 mandatory and B's answer (1) is not accepted; q1..q5 somewhat, accepted.
        let a = member(1, .woman, answers: [answer(0, 0, accept: [0], 4)] + uniformAnswers(5, from: 1))
        let b = member(2, .man, seeking: [.woman], answers: [answer(0, 1, accept: [0], 2)] + uniformAnswers(5, from: 1))
        // sA = 50, dA = 300; sB = dB = 60; n = 6.
        // m = sqrt(50*60 / (300*60)) - 1/6 = sqrt(1/6) - 1/6 = 0.40825 - 0.16667 = 0.24158; floor(24.66) = 24.
        #expect(tenths(a, b, s) == 24)
    }

    @Test("clamped to 0.0 when m is negative, and 0.0 is still a score")
    func clampToZero() {
        let s = survey(questions: 5)
        // A accepts none of B's answers: sA = 0, m = 0 - 1/5 = -0.2, floor(-19.5) = -20, clamped to 0.
        let a = member(1, .woman, answers: uniformAnswers(5, accept: [3]))
        let b = member(2, .man, seeking: [.woman], answers: uniformAnswers(5))
        #expect(tenths(a, b, s) == 0)
        let finder = MatchFinder()
        let population = Population(survey: s)
        try! population.upsert(a)
        try! population.upsert(b)
        #expect(finder.matches(forID: 1, in: population) == [Match(id: 2, tenths: 0)])
    }

    @Test("10.0 only when 1/n is small enough: n = 200 gives 10.0, n = 199 gives 9.9")
    func tenRequiresLargeN() {
        let s = survey(questions: 200)
        let a = member(1, .woman, answers: uniformAnswers(200))
        let b = member(2, .man, seeking: [.woman], answers: uniformAnswers(200))
        // m = 1 - 1/200 = 0.995, 100m + 0.5 = 100.0.
        #expect(tenths(a, b, s) == 100)
        #expect(Score.format(tenths: 100) == "10.0")
        let b199 = member(2, .man, seeking: [.woman], answers: uniformAnswers(199))
        // m = 1 - 1/199 = 0.994975, 100m + 0.5 = 99.997: 99.
        #expect(tenths(a, b199, s) == 99)
        // With Q = 100 a perfect pair is 9.9: 1 - 1/100 = 0.99, floor(99.5) = 99.
        let s100 = survey(questions: 100)
        #expect(tenths(member(1, .woman, answers: uniformAnswers(100)),
                       member(2, .man, seeking: [.woman], answers: uniformAnswers(100)), s100) == 99)
    }

    @Test("rounding at exactly .5 goes up, not to even")
    func halfUp() {
        let s = survey(questions: 8, options: 2)
        // A's weights 10,10,10,10,10,10,50,50; B answers what A accepts on
        // q0..q3 and q6: sA = 40 + 50 = 90, dA = 160 (sA/dA = 9/16).
        // B: importance 1 everywhere, accepts A's answers: sB = dB = 8; n = 8.
        // m = sqrt(720/1280) - 1/8 = 0.75 - 0.125 = 0.625 exactly; 100m + 0.5 = 63.0: 63.
        // Rounding 62.5 half-to-even would give 62.
        let weights = [10, 10, 10, 10, 10, 10, 50, 50]
        let accepted = [true, true, true, true, false, false, true, false]
        let a = member(1, .woman, answers: (0..<8).map { answer($0, 0, accept: [0], importance(weight: weights[$0])) })
        let b = member(2, .man, seeking: [.woman], answers: (0..<8).map { answer($0, accepted[$0] ? 0 : 1, accept: [0], 1) })
        #expect(tenths(a, b, s) == 63)
        #expect(Score.tenths(n: 8, sA: 90, dA: 160, sB: 8, dB: 8) == 63)
    }

    /// Builds the pair whose sums are the given per-question weights and
    /// acceptance flags (found by search: the literal formula and the
    /// shortcut disagree on them after rounding).
    func pair(_ weightsA: [Int], _ acceptedByA: [Bool], _ weightsB: [Int], _ acceptedByB: [Bool]) -> (Member, Member) {
        let n = weightsA.count
        // A answers 0 and accepts only 0: "A accepts" means B answered 0.
        let a = member(1, .woman, answers: (0..<n).map { answer($0, 0, accept: [0], importance(weight: weightsA[$0])) })
        // B accepts A's answer (0) exactly where acceptedByB says so.
        let b = member(2, .man, seeking: [.woman], answers: (0..<n).map {
            answer($0, acceptedByA[$0] ? 0 : 1, accept: acceptedByB[$0] ? [0] : [1], importance(weight: weightsB[$0]))
        })
        return (a, b)
    }

    @Test("order of operations: sqrt of the integer product ratio, not sqrt per side")
    func notSqrtPerSide() {
        let s = survey(questions: 8, options: 2)
        let (a, b) = pair(
            [10, 10, 50, 50, 10, 250, 250, 10], [true, false, true, true, true, true, false, true],
            [1, 1, 1, 250, 1, 1, 1, 10], [false, false, false, true, true, false, true, false])
        // sA = 380, dA = 640, sB = 252, dB = 266, n = 8.
        // sqrt(95760.0 / 170240.0) - 0.125 lands at 63; sqrt(sA/dA) * sqrt(sB/dB) at 62.
        #expect(tenths(a, b, s) == 63)
        let perSide = ((380.0 / 640.0).squareRoot() * (252.0 / 266.0).squareRoot() - 0.125) * 100 + 0.5
        #expect(Int(perSide.rounded(.down)) == 62, "the shortcut really does differ here")
    }

    @Test("order of operations: not a product of two ratios under the root")
    func notProductOfRatios() {
        let s = survey(questions: 8, options: 2)
        let (a, b) = pair(
            [50, 1, 10, 10, 50, 1, 50, 50], [true, true, false, true, true, false, true, true],
            [10, 50, 250, 50, 50, 1, 1, 10], [true, false, false, true, true, true, false, false])
        // sA = 211, dA = 222, sB = 111, dB = 422, n = 8: literal 38, ratio product 37.
        #expect(tenths(a, b, s) == 38)
        let ratios = (((211.0 / 222.0) * (111.0 / 422.0)).squareRoot() - 0.125) * 100 + 0.5
        #expect(Int(ratios.rounded(.down)) == 37, "the shortcut really does differ here")
    }

    @Test("age bounds are inclusive on all four sides")
    func inclusiveAges() {
        let s = survey(questions: 5)
        let answers = uniformAnswers(5)
        // A is 30 and wants 25...35; B is 25 or 35 and wants exactly 30.
        let a = member(1, .woman, age: 30, ages: 25...35, answers: answers)
        for bAge in [25, 35] {
            let b = member(2, .man, seeking: [.woman], age: bAge, ages: 30...30, answers: answers)
            #expect(tenths(a, b, s) == 80, "B at A's bound \(bAge), A at both of B's bounds")
        }
        for bAge in [24, 36] {
            let b = member(2, .man, seeking: [.woman], age: bAge, ages: 18...120, answers: answers)
            #expect(exclusion(a, b, s) == .age, "B just outside A's range at \(bAge)")
        }
        for bRange in [31...40, 20...29] {
            let b = member(2, .man, seeking: [.woman], age: 30, ages: bRange, answers: answers)
            #expect(exclusion(a, b, s) == .age, "A just outside B's range \(bRange)")
        }
    }

    @Test("seeking must hold both ways")
    func oneSidedSeeking() {
        let s = survey(questions: 5)
        let answers = uniformAnswers(5)
        let a = member(1, .woman, seeking: [.man], answers: answers)
        let b = member(2, .man, seeking: [.man], answers: answers)  // A seeks B, B does not seek A
        #expect(exclusion(a, b, s) == .seeking)
        #expect(exclusion(b, a, s) == .seeking)
        let nb = member(3, .nonbinary, seeking: [.woman], answers: answers)
        #expect(exclusion(a, nb, s) == .seeking)  // B seeks A, A does not seek B
        let open = member(4, .woman, seeking: [.man, .woman, .nonbinary], answers: answers)
        #expect(tenths(open, nb, s) == 80)
    }

    @Test("a block in either direction excludes the pair")
    func blocksEachWay() {
        let s = survey(questions: 5)
        let answers = uniformAnswers(5)
        let a = member(1, .woman, answers: answers, blocked: [2])
        let b = member(2, .man, seeking: [.woman], answers: answers)
        #expect(exclusion(a, b, s) == .blocked)
        #expect(exclusion(b, a, s) == .blocked)
        let a2 = member(1, .woman, answers: answers)
        let b2 = member(2, .man, seeking: [.woman], answers: answers, blocked: [1])
        #expect(exclusion(a2, b2, s) == .blocked)
        #expect(exclusion(b2, a2, s) == .blocked)
    }

    @Test("a member is never their own candidate")
    func notSelf() {
        let s = survey(questions: 5)
        let a = member(1, .woman, seeking: [.woman], age: 30, answers: uniformAnswers(5))
        #expect(exclusion(a, a, s) == .sameMember)
    }

    @Test("score strings have exactly one decimal and parse back")
    func scoreStrings() {
        for t in 0...100 {
            let text = Score.format(tenths: t)
            #expect(Score.parse(text) == t)
            #expect(text.split(separator: ".").last?.count == 1)
        }
        #expect(Score.format(tenths: 0) == "0.0")
        #expect(Score.format(tenths: 73) == "7.3")
        for bad in ["7", "7.30", ".3", "10.1", "11.0", "07.3", "-1.0", "7,3", ""] {
            #expect(Score.parse(bad) == nil, "\(bad) is not a stored score")
        }
    }
}
