import ArgumentParser
import Foundation
import KindredConfig
import KindredSupport
import MariaDBClient
import MemberFormat
import MemberStore
import RedisClient
import Scoring
import ScoreStore

struct MatchesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matches",
        abstract: "Print one member's ranked matches: computed from files (--survey, --members), or as stored on their shard.",
        discussion: """
            With --survey and --members: loads the files and computes the matches (rejected lines go to \
            standard error as `line N: reason`). Without them: reads the member's stored set from their \
            shard (KINDRED_MYSQL says which).
            """
    )

    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var scoring: ScoringOptions

    @Option(help: "The survey file (JSON).")
    var survey: String?

    @Option(help: "The members file (JSON Lines).")
    var members: String?

    @Argument(help: "The member whose matches to print.")
    var memberID: UInt32

    @Option(help: "Print at most this many matches.")
    var limit: Int?

    @Flag(help: "Print one JSON object: {\"member\": ID, \"matches\": [{\"id\": ..., \"score\": \"7.3\"}, ...]}.")
    var json = false

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must not be negative") }
        guard memberID >= 1 else { throw ValidationError("member ids are positive integers below 2^32") }
        if (survey == nil) != (members == nil) { throw ValidationError("give both --survey and --members, or neither (stored set)") }
    }

    func run() async throws {
        let configuration = try await configOptions.load()
        let matches: [Match]
        let source: String
        if let survey, let members {
            let settings = try scoring.apply(to: configuration.scoring)
            let (population, summary) = try MemberFile.loadPopulation(
                surveyPath: survey, membersPath: members, onReject: { printError($0.description) })
            guard let computed = MatchFinder(settings: settings).matches(forID: memberID, in: population) else {
                throw CLIError("member \(memberID) is not in \(members)")
            }
            matches = computed
            source = "computed from \(members): population \(population.count), \(summary.rejected) lines rejected"
        } else {
            (matches, source) = try await storedMatches(configuration)
        }
        let shown = matches.prefix(limit ?? matches.count)
        if json {
            print(MatchesJSON.document(member: memberID, matches: shown))
            return
        }
        print("Matches for member \(memberID): \(shown.count) shown of \(matches.count) (\(source))")
        print("  rank  member      score")
        for (rank, match) in shown.enumerated() {
            let bar = String(repeating: "█", count: Int(match.tenths) / 5)
            let id = String(match.id).padding(toLength: 10, withPad: " ", startingAt: 0)
            let rankText = String(rank + 1).leftPadded(to: 6)
            print("\(rankText)  \(id)  \(match.score.leftPadded(to: 5))  \(bar)")
        }
    }

    /// The member's set as stored on their shard.
    private func storedMatches(_ configuration: KindredConfiguration) async throws -> ([Match], String) {
        let mysql = try mysqlConfiguration(configuration)
        let id = memberID
        return try await runOnThread(name: "kindred-matches") { () throws -> ([Match], String) in
            RedisClient.ignoreSIGPIPE()
            let session = try StoreSession.connect(StoreConfiguration(mysql: mysql))
            defer { session.close() }
            guard let shardID = try ShardDirectory().shard(of: id, in: session),
                let shard = try session.shards.shard(shardID)
            else {
                throw CLIError("member \(id) has no shard: no set is stored (queue them with `kindred enqueue \(id)`)")
            }
            let manager = ShardConnectionManager(shards: [ShardEndpoint(id: shard.id, address: shard.address.url, isCluster: shard.address.isCluster)])
            defer { manager.close() }
            guard let set = try ScoreStore(manager: manager).readSet(id, shard: shard.id) else {
                throw CLIError("member \(id) has no set on shard \(shard.id) yet (queued or dormant)")
            }
            let generated = Date(timeIntervalSince1970: Double(set.meta.generatedAt)).ISO8601Format()
            return (set.matches, "stored on shard \(shard.id), generated \(generated)")
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
