import Foundation
import HTTPTypes
import KindredCore
import MariaDBClient
import MemberFormat
@_spi(Testing) import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Testing
import TestSupport
import WorkQueue

// Checks the program tests share (the worker's, the runs', the CLI's and
// the web backend's targets): what a `kindred worker` process left behind,
// and every set exact at a small N against the engine's recomputation.

/// A `kindred worker` process over an installation, and what it left.
enum WorkerChecks {
    static func binary() throws -> String { try KindredProcess.binary() }

    static func startWorker(
        _ installation: Installation, name: String = "worker", workers: Int = 2, environment extra: [String: String] = [:]
    ) throws -> ServerProcess {
        try KindredProcess.startWorker(installation, name: name, workers: workers, environment: extra)
    }

    static func waitForGenerated(_ installation: Installation, atLeast count: Int, worker: ServerProcess?, timeout: Duration = .seconds(180)) throws {
        try KindredProcess.waitForGenerated(installation, atLeast: count, worker: worker, timeout: timeout)
    }

    /// Waits until the queue holds nothing (waiting, delayed or in flight).
    static func waitForIdleQueue(_ installation: Installation, timeout: Duration = .seconds(60)) throws -> QueueStats {
        let redis = try installation.queueServer.connect()
        var stats = QueueStats()
        try poll(until: "an idle queue", timeout: timeout, interval: .milliseconds(100)) {
            stats = try WorkQueue().stats(on: QueueConnection(redis))
            return stats.waiting.values.reduce(0, +) == 0 && stats.delayed == 0 && stats.processing == 0
        }
        return stats
    }

    /// Every member's stored set is exactly the engine's matches.
    static func expectAllSetsCorrect(_ installation: Installation, members: [Member]? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let members = members ?? installation.members
        let expected = try Installation.expectedMatches(members, survey: installation.survey)
        let stored = try installation.storedSets()
        var wrong: [String] = []
        for member in members where stored[member.id] != .some(expected[member.id]) {
            let got = stored[member.id] ?? nil
            let want = expected[member.id] ?? []
            let missing = Set(want).subtracting(got ?? []).count
            let extra = Set(got ?? []).subtracting(want).count
            wrong.append("\(member.id): \(got.map { "\($0.count)" } ?? "no set") stored, \(want.count) expected, \(missing) missing, \(extra) extra")
        }
        #expect(wrong.isEmpty, "\(wrong.count) of \(members.count) stored sets differ from the engine's: \(wrong.prefix(8))", sourceLocation: sourceLocation)
    }
}

/// A web backend whose every set is built at a small N (12), and the exact
/// check of every set against the engine over the population in MySQL
/// (issue "Sets stay true").
enum ExactSets {
    static let topN = 12

    /// A web backend over a fresh installation with every set built at N = 12.
    static func harness(memberLimit: Int = 200, configure: (inout GenerationSettings) -> Void = { _ in }) throws -> WebHarness {
        let web = try WebHarness(memberLimit: memberLimit, generate: false) {
            $0.scoring.topN = topN
            configure(&$0)
        }
        let generator = Generator(core: web.core)
        for member in web.installation.members { _ = try generator.regenerate(member.id) }
        return web
    }

    /// Every live member's stored first N equals the engine's matches over
    /// the population in MySQL (members without a set are skipped).
    static func expectEverySetExact(_ web: WebHarness, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let connection = try web.installation.connectMySQL()
        defer { connection.close() }
        let repository = MemberRepository(connection: connection, survey: web.installation.survey)
        let members = try repository.memberIDs(.all, after: 0, limit: 1_000_000).compactMap { try repository.member($0) }
        let expected = try Installation.expectedMatches(members, survey: web.installation.survey, settings: ScoringSettings(topN: topN))
        let store = web.installation.scoreStore()
        defer { store.manager.close() }
        var checked = 0
        for member in members {
            guard let generation = try GenerationStore(connection: connection).generation(of: member.id),
                let set = try store.readSet(member.id, shard: generation.shardID)
            else { continue }
            #expect(set.matches == expected[member.id], "member \(member.id)", sourceLocation: sourceLocation)
            checked += 1
        }
        #expect(checked > 0, sourceLocation: sourceLocation)
    }

    /// Runs the worker's job for each member, as the queue would.
    static func work(_ web: WebHarness, _ members: [MemberID]) throws {
        let generator = Generator(core: web.core)
        for member in members { _ = try generator.process(member, ownSet: .always) }
    }

    /// Two members who each rank the other in their first N.
    static func mutualPair(_ web: WebHarness) throws -> (MemberID, MemberID) {
        let expected = try Installation.expectedMatches(web.installation.members, survey: web.installation.survey, settings: ScoringSettings(topN: topN))
        for (a, matches) in expected.sorted(by: { $0.key < $1.key }) {
            for match in matches where expected[match.id]?.contains(where: { $0.id == a }) == true { return (a, match.id) }
        }
        throw TestSupportError("no mutual pair in the fixture")
    }

    static func page(_ web: WebHarness, _ member: MemberID) async throws -> WebHarness.Reply {
        let reply = try await web.send(.get, "/v1/members/\(member)/matches?limit=500")
        #expect(reply.status == 200, "\(reply.body)")
        return reply
    }
}
