@testable import Scoring
import Testing
import TestSupport

@Suite("Match finder: ranking, selection and the fast path against the reference", .offCooperativePool)
struct MatchFinderTests {
    @Test("ties are ordered by numeric id, not by the id's text")
    func tiesByNumericID() throws {
        let s = survey(questions: 5)
        let population = Population(survey: s)
        try population.upsert(member(1, .woman, answers: uniformAnswers(5)))
        for id: MemberID in [100, 9, 10, 4_000_000_000, 2] {
            try population.upsert(member(id, .man, seeking: [.woman], answers: uniformAnswers(5)))
        }
        let matches = try #require(MatchFinder().matches(forID: 1, in: population))
        #expect(matches.map(\.id) == [2, 9, 10, 100, 4_000_000_000])
        #expect(matches.allSatisfy { $0.score == "8.0" })
    }

    @Test("rank by score descending, then id; cut to N; MIN_SCORE keeps t >= MIN_SCORE")
    func rankCutAndMinScore() throws {
        let s = survey(questions: 10)
        let population = Population(survey: s)
        try population.upsert(member(1, .woman, answers: uniformAnswers(10)))
        // Member 10 + k shares 10 - k questions... more common questions, higher score.
        for k in 0..<6 {
            try population.upsert(member(MemberID(20 - k), .man, seeking: [.woman], answers: uniformAnswers(10 - k)))
        }
        // n = 10 ... 5: 1 - 1/n = .9, .889, .875, .857, .833, .8 -> 90, 89, 88, 86, 83, 80.
        let all = try #require(MatchFinder().matches(forID: 1, in: population))
        #expect(all.map(\.id) == [20, 19, 18, 17, 16, 15])
        #expect(all.map(\.tenths) == [90, 89, 88, 86, 83, 80])
        let top3 = try #require(MatchFinder(settings: ScoringSettings(topN: 3)).matches(forID: 1, in: population))
        #expect(top3.map(\.id) == [20, 19, 18])
        let min86 = try #require(MatchFinder(settings: ScoringSettings(minScore: 86)).matches(forID: 1, in: population))
        #expect(min86.map(\.id) == [20, 19, 18, 17])
    }

    @Test("selection with the cut inside a large tie keeps the smallest ids")
    func cutInsideTie() throws {
        let s = survey(questions: 6)
        let population = Population(survey: s)
        try population.upsert(member(1, .woman, answers: uniformAnswers(6)))
        var rng = TestRNG(seed: 42)
        var ids = Set<MemberID>()
        while ids.count < 3000 { ids.insert(MemberID.random(in: 2...MemberID.max, using: &rng)) }
        // One better candidate, then 3000 with the same score.
        try population.upsert(member(5_000, .man, seeking: [.woman], answers: uniformAnswers(6)))
        for id in ids where id != 5_000 {
            try population.upsert(member(id, .man, seeking: [.woman], answers: uniformAnswers(5)))
        }
        let finder = MatchFinder(settings: ScoringSettings(topN: 101))
        let matches = try #require(finder.matches(forID: 1, in: population))
        let expectedTies = ids.subtracting([5_000]).sorted().prefix(100)
        #expect(matches.first == Match(id: 5_000, tenths: 83))
        #expect(Array(matches.dropFirst().map(\.id)) == Array(expectedTies))
    }

    @Test("quickselect keeps exactly the largest values for every cut")
    func quickselect() {
        var rng = TestRNG(seed: 7)
        for trial in 0..<200 {
            let count = Int.random(in: 1...300, using: &rng)
            var values = Set<UInt64>()
            while values.count < count { values.insert(UInt64.random(in: 0...UInt64(count * (trial % 3 == 0 ? 2 : 1000)), using: &rng)) }
            var array = Array(values).shuffled(using: &rng)
            if trial % 5 == 0 { array.sort() }  // sorted input, a quicksort's worst case
            let keep = Int.random(in: 1...count, using: &rng)
            array.withUnsafeMutableBufferPointer { MatchFinder.selectLargest($0.baseAddress!, count: count, keep: keep) }
            #expect(Set(array.prefix(keep)) == Set(values.sorted(by: >).prefix(keep)), "trial \(trial)")
        }
    }

    @Test("fast path equals the reference on thousands of random pairs")
    func randomPairs() throws {
        var checked = 0
        for seed in 0..<40 as Range<UInt64> {
            let random = RandomPopulation(seed: seed, size: 60)
            let population = Population(survey: random.survey)
            let finder = MatchFinder(settings: ScoringSettings(topN: 1_000))
            for a in random.members.prefix(20) {
                for b in random.members {
                    // A population holding only B, probed with A: the SIMD kernel on one pair.
                    for id in population.memberIDs { population.remove(id) }
                    try population.upsert(b)
                    let fast = try finder.matches(for: a, in: population).first
                    let expected = Reference.score(a, b, minCommon: 5)
                    #expect(fast.map { Int($0.tenths) } == expected, "seed \(seed): \(a.id) vs \(b.id)")
                    #expect(random.survey.outcome(a, b, settings: .default).tenths == expected)
                    checked += 1
                }
            }
        }
        #expect(checked == 40 * 20 * 60)
    }

    @Test("fast path equals the reference for every member of random populations", arguments: 0..<12 as Range<UInt64>)
    func randomPopulations(seed: UInt64) throws {
        let random = RandomPopulation(seed: 1_000 + seed, size: 400, questions: seed == 0 ? 512 : nil)
        let population = Population(survey: random.survey, capacity: 16)  // grows while loading
        for m in random.members { try population.upsert(m) }
        var rng = TestRNG(seed: seed)
        let settings = ScoringSettings(
            topN: [1, 7, 50, 5000].randomElement(using: &rng)!,
            minScore: [0, 0, 30, 70].randomElement(using: &rng)!,
            minCommon: [1, 5, 5, 12].randomElement(using: &rng)!)
        let finder = MatchFinder(settings: settings)
        for a in random.members {
            let expected = Reference.matches(a, among: random.members, settings: settings)
            #expect(finder.matches(forID: a.id, in: population) == expected, "seed \(seed), member \(a.id), \(settings)")
        }
    }
}
