import Scoring
import Testing
import TestSupport

@Suite("Columnar population", .offCooperativePool)
struct PopulationTests {
    @Test("a stored member reads back as given (answers in question order, blocks sorted)")
    func roundTrip() throws {
        let random = RandomPopulation(seed: 9, size: 200)
        let population = Population(survey: random.survey)
        for m in random.members { try population.upsert(m) }
        #expect(population.count == 200)
        for m in random.members {
            var expected = m
            expected.answers.sort { $0.question < $1.question }
            expected.blocked = Array(Set(m.blocked)).sorted()
            #expect(population.member(m.id) == expected)
        }
    }

    @Test("replacing a member changes their filters and answers; removing makes them nobody's match")
    func replaceAndRemove() throws {
        let s = survey(questions: 5)
        let population = Population(survey: s)
        try population.upsert(member(1, .woman, answers: uniformAnswers(5)))
        try population.upsert(member(2, .man, seeking: [.woman], answers: uniformAnswers(5)))
        let finder = MatchFinder()
        #expect(finder.matches(forID: 1, in: population) == [Match(id: 2, tenths: 80)])

        // 2 now seeks men only: no longer a candidate for 1.
        try population.upsert(member(2, .man, seeking: [.man], answers: uniformAnswers(5)))
        #expect(finder.matches(forID: 1, in: population) == [])
        #expect(population.count == 2)

        // Back, with different answers: a new score.
        try population.upsert(member(2, .man, seeking: [.woman], answers: uniformAnswers(6 - 1, accept: [0, 1])))
        #expect(finder.matches(forID: 1, in: population) == [Match(id: 2, tenths: 80)])

        #expect(population.remove(2))
        #expect(!population.remove(2))
        #expect(finder.matches(forID: 1, in: population) == [])
        #expect(finder.matches(forID: 2, in: population) == nil)
        #expect(population.member(2) == nil)

        // The empty slot is reused and the newcomer is found.
        try population.upsert(member(3, .man, seeking: [.woman], answers: uniformAnswers(5)))
        #expect(finder.matches(forID: 1, in: population) == [Match(id: 3, tenths: 80)])
    }

    @Test("a block on an absent id applies when that id arrives, and survives its removal")
    func blocksOnAbsentIDs() throws {
        let s = survey(questions: 5)
        let population = Population(survey: s)
        try population.upsert(member(1, .woman, answers: uniformAnswers(5), blocked: [2]))
        let finder = MatchFinder()
        try population.upsert(member(2, .man, seeking: [.woman], answers: uniformAnswers(5)))
        #expect(finder.matches(forID: 1, in: population) == [])
        #expect(finder.matches(forID: 2, in: population) == [])
        population.remove(2)
        try population.upsert(member(2, .man, seeking: [.woman], answers: uniformAnswers(5)))
        #expect(finder.matches(forID: 2, in: population) == [])
        // 1 lifts the block by replacing their record.
        try population.upsert(member(1, .woman, answers: uniformAnswers(5)))
        #expect(finder.matches(forID: 2, in: population) == [Match(id: 1, tenths: 80)])
    }

    @Test("a member record newer than the population is scored as given, never against its old self")
    func probeNotInPopulation() throws {
        let random = RandomPopulation(seed: 77, size: 150, questions: 20)
        let population = Population(survey: random.survey)
        for m in random.members { try population.upsert(m) }
        let finder = MatchFinder(settings: ScoringSettings(minCommon: 3))
        for m in random.members.prefix(30) {
            let viaRecord = try finder.matches(for: m, in: population)
            #expect(viaRecord == finder.matches(forID: m.id, in: population))
            #expect(!viaRecord.contains { $0.id == m.id })
        }
        // An outsider (not in the population) sees the same as the reference.
        var outsider = random.members[0]
        outsider.id = 999_999
        let expected = Reference.matches(outsider, among: random.members, settings: ScoringSettings(minCommon: 3))
        #expect(try finder.matches(for: outsider, in: population) == expected)
    }

    @Test("invalid members are refused with the field named and nothing changes")
    func validation() throws {
        let s = survey(questions: 5, options: 3)
        let population = Population(survey: s)
        let good = member(1, .woman, answers: uniformAnswers(5))
        try population.upsert(good)
        let cases: [(Member, String)] = [
            (member(0, answers: []), "id"),
            (member(1, age: 17), "age"),
            (member(1, age: 121), "age"),
            (Member(id: 1, gender: .man, seeking: [.woman], age: 30, ageMin: 40, ageMax: 39), "age_min"),
            (Member(id: 1, gender: .man, seeking: [], age: 30, ageMin: 18, ageMax: 40), "seeking"),
            (member(1, answers: [answer(5, 0, accept: [0], 2)]), "answers[0].q"),
            (member(1, answers: [answer(0, 3, accept: [0], 2)]), "answers[0].answer"),
            (member(1, answers: [answer(0, 0, accept: [], 2)]), "answers[0].accept"),
            (member(1, answers: [answer(0, 0, accept: [3], 2)]), "answers[0].accept"),
            (member(1, answers: [answer(0, 0, accept: [0], 2), answer(0, 1, accept: [0], 2)]), "answers[1].q"),
            (member(1, blocked: [0]), "blocked"),
        ]
        for (bad, field) in cases {
            #expect(throws: MemberValidationError.self) { try population.upsert(bad) }
            do {
                try population.upsert(bad)
            } catch {
                #expect(error.field == field)
            }
        }
        #expect(population.member(1) == good)
    }

    @Test("a million members with Q = 100 fit in a few hundred MB of columns")
    func footprint() {
        let population = Population(survey: survey(questions: 100))
        population.reserveCapacity(1_000_000)
        // 336 answer bytes + 24 bytes of filter, id, activity and version tag per member.
        #expect(population.columnBytes == 1_000_000 * 360)
    }
}

@Suite("Population ordering: sorted cohorts, unsorted tail, holes", .offCooperativePool)
struct PopulationOrderingTests {
    /// Random upserts (new members, in-cohort changes, cohort moves) and
    /// removals interleaved with organize: after every step, every member's
    /// matches equal the reference's over the live members.
    @Test("scans stay exact through upserts, moves, removals and reorganisation", arguments: 0..<4 as Range<UInt64>)
    func churn(seed: UInt64) throws {
        let random = RandomPopulation(seed: 500 + seed, size: 300, questions: 12)
        let population = Population(survey: random.survey, capacity: 32)
        var live: [MemberID: Member] = [:]
        var rng = TestRNG(seed: seed)
        let settings = ScoringSettings(topN: 40, minCommon: 3)
        let finder = MatchFinder(settings: settings)
        for (step, m) in random.members.enumerated() {
            try population.upsert(m)
            live[m.id] = m
            switch Int.random(in: 0..<10, using: &rng) {
            case 0:
                // Change answers only (same cohort): written in place.
                if var other = live.values.randomElement(using: &rng) {
                    other.answers = Array(other.answers.shuffled(using: &rng).prefix(other.answers.count / 2))
                    try population.upsert(other)
                    live[other.id] = other
                }
            case 1:
                // Move to another cohort (age and seeking change).
                if var other = live.values.randomElement(using: &rng) {
                    other.age = Int.random(in: other.ageMin...other.ageMax, using: &rng)
                    other.seeking = GenderSet(rawValue: UInt8.random(in: 1...7, using: &rng))
                    try population.upsert(other)
                    live[other.id] = other
                }
            case 2:
                if let gone = live.keys.randomElement(using: &rng) {
                    #expect(population.remove(gone))
                    live[gone] = nil
                }
            case 3:
                population.organize()
                #expect(population.unsortedCount == 0)
            default:
                break
            }
            if step % 25 == 24 {
                let members = Array(live.values)
                for a in members.prefix(15) {
                    #expect(finder.matches(forID: a.id, in: population)
                        == Reference.matches(a, among: members, settings: settings), "seed \(seed) step \(step)")
                }
            }
        }
        #expect(population.count == live.count)
        population.organize()
        for a in live.values {
            #expect(finder.matches(forID: a.id, in: population)
                == Reference.matches(a, among: Array(live.values), settings: settings))
            #expect(population.member(a.id)?.id == a.id)
        }
    }

    @Test("organizeIfNeeded sorts once the tail outgrows its share")
    func organizeThreshold() throws {
        let random = RandomPopulation(seed: 3, size: 5000, questions: 4)
        let population = Population(survey: random.survey)
        for m in random.members.prefix(4000) { try population.upsert(m) }
        #expect(!population.organizeIfNeeded(), "4000 unsorted members are under the 4096 floor")
        for m in random.members.dropFirst(4000) { try population.upsert(m) }
        #expect(population.organizeIfNeeded())
        #expect(population.unsortedCount == 0)
        #expect(population.count == 5000)
    }
}
