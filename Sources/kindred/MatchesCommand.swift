import ArgumentParser
import Foundation
import KindredConfig
import MemberFormat
import Scoring

struct MatchesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matches",
        abstract: "Load a survey and members from files and print one member's ranked matches."
    )

    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var scoring: ScoringOptions

    @Option(help: "The survey file (JSON).")
    var survey: String

    @Option(help: "The members file (JSON Lines).")
    var members: String

    @Argument(help: "The member whose matches to print.")
    var memberID: UInt32

    @Option(help: "Print at most this many matches.")
    var limit: Int?

    @Flag(help: "Print one JSON object: {\"member\": ID, \"matches\": [{\"id\": ..., \"score\": \"7.3\"}, ...]}.")
    var json = false

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must not be negative") }
        guard memberID >= 1 else { throw ValidationError("member ids are positive integers below 2^32") }
    }

    func run() async throws {
        let settings = try scoring.apply(to: try await configOptions.load().scoring)
        let (population, summary) = try MemberFile.loadPopulation(
            surveyPath: survey, membersPath: members, onReject: { printError($0.description) })
        guard let matches = MatchFinder(settings: settings).matches(forID: memberID, in: population) else {
            throw CLIError("member \(memberID) is not in \(members)")
        }
        let shown = matches.prefix(limit ?? matches.count)
        if json {
            print(MatchesJSON.document(member: memberID, matches: shown))
            return
        }
        print("Matches for member \(memberID): \(shown.count) shown of \(matches.count) "
            + "(population \(population.count), \(summary.rejected) lines rejected)")
        print("  rank  member      score")
        for (rank, match) in shown.enumerated() {
            let bar = String(repeating: "█", count: Int(match.tenths) / 5)
            let id = String(match.id).padding(toLength: 10, withPad: " ", startingAt: 0)
            let rankText = String(rank + 1).leftPadded(to: 6)
            print("\(rankText)  \(id)  \(match.score.leftPadded(to: 5))  \(bar)")
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
