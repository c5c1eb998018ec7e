import Foundation
import KindredCore
@testable import KindredTestKit
import MariaDBClient
@_spi(Testing) import MemberStore
import ScoreStore
import Scoring
import Testing
import TestSupport

/// The job itself, run in-process against real servers.
@Suite("Generator", .timeLimit(.minutes(5)))
struct GeneratorTests {
    @Test("every fixture member's stored set equals the engine's matches; publication changes nothing in a static population")
    func generateAll() async throws {
        try await onThread("generateAll") {
            let installation = try Installation()
            let (context, _) = try installation.core()
            let generator = Generator(core: context)
            var changed = 0
            var checked = 0
            for member in installation.members {
                let outcome = try generator.regenerate(member.id)
                guard outcome.kind == .generated else {
                    Issue.record("member \(member.id) was not generated")
                    continue
                }
                #expect(outcome.publication.published)
                // Watched, so that a placement that finds the pair as it is
                // says so (unchanged): in a set no reader watches, it reads
                // as an update (the script saves the HGET).
                let shard = try #require(context.sets?.entry(of: member.id)?.shard)
                _ = try context.scores.readMeta(member.id, shard: shard, since: nil, watch: true)
                for kind in [ScoreStore.PlacementOutcome.entered, .updated, .removed, .stale, .legacy] {
                    changed += outcome.publication.count(kind)
                }
                // A set whose scan saw the member is skipped; one that may not have is checked.
                checked += outcome.publication.count(.unchanged) + outcome.publication.skippedCovered
                #expect(outcome.rebuild.isEmpty)
            }
            // Every set was computed from this very population: placements find them right.
            #expect(changed == 0)
            #expect(checked > 0)
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

    @Test("a newcomer enters every set whose ranking now includes them, and every set stays exactly its top N")
    func newcomer() async throws {
        try await onThread("newcomer") {
            let installation = try Installation(memberLimit: 400)
            let (context, _) = try installation.core { $0.scoring.topN = 8 }
            let generator = Generator(core: context)
            for member in installation.members { _ = try generator.regenerate(member.id) }
            // Each stored set is the first N + S + (the member's share of W)
            // of their ranking (S = 16, W = 32 at N = 8): sizes spread over
            // the trim window, so that sets written together do not all
            // reach the trim point together.
            let configuration = context.scores.configuration
            let largest = configuration.largestSet(forLimit: 8)
            #expect(largest == 8 + 16 + 32)
            let ranked = try Installation.expectedMatches(
                installation.members, survey: installation.survey, settings: ScoringSettings(topN: largest))
            let written = installation.scoreStore()
            var sizes = Set<Int>()
            for member in installation.members {
                let size = configuration.writtenSize(forLimit: 8, member: member.id)
                #expect((8 + 16...largest).contains(size))
                let shard = try #require(context.sets?.entry(of: member.id)?.shard)
                let set = try #require(try written.readSet(member.id, shard: shard, cutToLimit: false))
                let ranking = try #require(ranked[member.id])
                #expect(set.matches == Array(ranking.prefix(size)), "member \(member.id)")
                if ranking.count >= largest { sizes.insert(set.matches.count) }
            }
            #expect(sizes.count > 10, "full sets should be written at many sizes, not one: \(sizes.sorted())")
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
            let outcome = try generator.regenerate(newcomer.id)
            #expect(outcome.kind == .generated && outcome.matches > 0)
            #expect(outcome.publication.count(.entered) > 0)
            // Everyone: their set is their top 8 over the population with the newcomer.
            let everyone = installation.members + [newcomer]
            let expected = try Installation.expectedMatches(everyone, survey: installation.survey, settings: ScoringSettings(topN: 8))
            let store = installation.scoreStore()
            let directory = try SessionDirectory(configuration: installation.mysqlConfiguration)
            // Every set (not only those of the newcomer's own matches) is now
            // exactly its top 8 over the population with the newcomer.
            var holders = 0
            for member in everyone {
                let shard = try #require(try directory.shard(of: member.id))
                let set = try #require(try store.readSet(member.id, shard: shard))
                #expect(set.matches == expected[member.id], "member \(member.id)")
                if set.matches.contains(where: { $0.id == newcomer.id }) { holders += 1 }
            }
            let ownMatches = Set(try #require(expected[newcomer.id]).map(\.id))
            let beyondOwn = everyone.filter { expected[$0.id]?.contains { $0.id == newcomer.id } == true && !ownMatches.contains($0.id) }
            #expect(holders > 0)
            #expect(!beyondOwn.isEmpty, "the fixture should have sets that rank the newcomer outside the newcomer's own top 8")
        }
    }

    @Test("a deleted member disappears from their own set and from every set that held them")
    func deletion() async throws {
        try await onThread("deletion") {
            let installation = try Installation(memberLimit: 400)
            let (context, _) = try installation.core()
            let generator = Generator(core: context)
            for member in installation.members { _ = try generator.regenerate(member.id) }
            let before = try installation.storedSets()
            let leaving: MemberID = try #require(installation.members.max { (before[$0.id]??.count ?? 0) < (before[$1.id]??.count ?? 0) }?.id)
            let heldBy = before.filter { $0.value?.contains { $0.id == leaving } == true }.map(\.key)
            #expect(heldBy.count > 10)
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            #expect(try MemberRepository(connection: connection, survey: installation.survey).delete(leaving))
            let outcome = try generator.regenerate(leaving)
            #expect(outcome.kind == .removed)
            #expect(outcome.publication.count(.removed) == heldBy.count)
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
            let (context, _) = try installation.core()
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            try connection.execute("UPDATE members SET age = 7 WHERE id = 5")
            let failure = try #require(throws: GenerationFailure.self) { try Generator(core: context).regenerate(5) }
            #expect(failure.kind == .badData)
            #expect(failure.message.contains("age"))
            #expect(!failure.message.contains(" 7"))
        }
    }
}
