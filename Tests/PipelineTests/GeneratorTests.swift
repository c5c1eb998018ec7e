import Foundation
import MariaDBClient
import MemberStore
import Pipeline
import Scoring
import ScoreStore
import Testing
import TestSupport

/// The job itself, run in-process against real servers.
@Suite("Generator", .timeLimit(.minutes(5)))
struct GeneratorTests {
    @Test("every fixture member's stored set equals the engine's matches; reciprocal offers change nothing in a static population")
    func generateAll() async throws {
        try await onThread("generateAll") {
            let installation = try Installation()
            let (context, _) = try installation.context()
            let generator = Generator(context: context)
            var offers = ScoreStore.OfferStats()
            for member in installation.members {
                guard case .generated(_, _, let stats, _) = try generator.regenerate(member.id) else {
                    Issue.record("member \(member.id) was not generated")
                    continue
                }
                offers = offers + stats
            }
            #expect(offers.entered == 0 && offers.refused + offers.skippedByFloor == 0, "\(offers)")
            #expect(offers.unchanged > 0 && offers.noSet > 0)
            let expected = try Installation.expectedMatches(installation.members, survey: installation.survey)
            let stored = try installation.storedSets()
            for member in installation.members {
                #expect(stored[member.id] == .some(expected[member.id]), "member \(member.id)")
            }
            #expect(try installation.generatedCount() == installation.members.count)
            // Generating again is harmless: the same sets.
            _ = try generator.regenerate(installation.members[0].id)
            #expect(try installation.storedSets()[installation.members[0].id] == .some(expected[installation.members[0].id]))
        }
    }

    @Test("a newcomer's score is offered into the sets of their matches, which stay bounded by N")
    func reciprocalOffers() async throws {
        try await onThread("reciprocalOffers") {
            let installation = try Installation(memberLimit: 400)
            let (context, _) = try installation.context { $0.scoring.topN = 8 }
            let generator = Generator(context: context)
            for member in installation.members { _ = try generator.regenerate(member.id) }
            // A newcomer answering everything like member 1, who accepts what everyone answers.
            var newcomer = try #require(installation.members.first { $0.id == 1 })
            newcomer.id = 7_000_000
            newcomer.answers = newcomer.answers.map { answer in
                var wide = answer
                wide.accepted = OptionSet8(range: 0...(installation.survey.optionCounts[answer.question] - 1))
                wide.importance = .mandatory
                return wide
            }
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            try MemberRepository(connection: connection, survey: installation.survey).upsert([newcomer])
            guard case .generated(_, let count, let offers, _) = try generator.regenerate(newcomer.id) else {
                Issue.record("not generated")
                return
            }
            #expect(count > 0 && offers.entered + offers.updated > 0)
            // Everyone: their set is their top 8 over the population with the newcomer.
            let everyone = installation.members + [newcomer]
            let expected = try Installation.expectedMatches(everyone, survey: installation.survey, settings: ScoringSettings(topN: 8))
            let store = installation.scoreStore()
            let directory = ShardDirectory(connection: try SerializedConnection(configuration: installation.mysqlConfiguration))
            // Offers reach the newcomer's own matches: each of those sets is now
            // exactly its top 8 over the population with the newcomer.
            let offeredTo = Set(try #require(expected[newcomer.id]).map(\.id))
            var holders = 0
            for member in everyone {
                let shard = try #require(try directory.shard(of: member.id))
                let set = try #require(try store.readSet(member.id, shard: shard, cutToLimit: false))
                #expect(set.matches.count <= 8 + context.scores.configuration.slack(forLimit: 8))
                if set.matches.contains(where: { $0.id == newcomer.id }) { holders += 1 }
                if offeredTo.contains(member.id) {
                    #expect(Array(set.matches.prefix(8)) == expected[member.id], "member \(member.id)")
                }
            }
            #expect(holders >= offers.entered && holders > 0)
        }
    }

    @Test("a deleted member disappears from their own set and from every set that held them")
    func deletion() async throws {
        try await onThread("deletion") {
            let installation = try Installation(memberLimit: 400)
            let (context, _) = try installation.context()
            let generator = Generator(context: context)
            for member in installation.members { _ = try generator.regenerate(member.id) }
            let before = try installation.storedSets()
            let leaving: MemberID = try #require(installation.members.max { (before[$0.id]??.count ?? 0) < (before[$1.id]??.count ?? 0) }?.id)
            let heldBy = before.filter { $0.value?.contains { $0.id == leaving } == true }.map(\.key)
            #expect(heldBy.count > 10)
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            #expect(try MemberRepository(connection: connection, survey: installation.survey).delete(leaving))
            guard case .removed(let removed) = try generator.regenerate(leaving) else {
                Issue.record("not removed")
                return
            }
            #expect(removed == heldBy.count)
            let after = try installation.storedSets()
            #expect(after[leaving] == .some(nil), "no shard, no set")
            for (member, set) in after where member != leaving {
                #expect(!(set?.contains { $0.id == leaving } ?? false), "member \(member) still holds the deleted member")
            }
            #expect(try GenerationStore(connection: connection).generation(of: leaving) == nil)
            #expect(context.population.read { !$0.contains(leaving) })
        }
    }

    @Test("a member whose stored row breaks the rules is bad data, named without their values")
    func badData() async throws {
        try await onThread("badData") {
            let installation = try Installation(memberLimit: 50)
            let (context, _) = try installation.context()
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            try connection.execute("UPDATE members SET age = 7 WHERE id = 5")
            let failure = try #require(throws: GenerationFailure.self) { try Generator(context: context).regenerate(5) }
            #expect(failure.kind == .badData)
            #expect(failure.message.contains("age"))
            #expect(!failure.message.contains(" 7"))
        }
    }
}
