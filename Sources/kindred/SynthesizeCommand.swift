import ArgumentParser
import Foundation
import MemberFormat
import Synthetic

struct SynthesizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthesize",
        abstract: "Write a deterministic synthetic population (survey.json, members.jsonl) in the import format."
    )

    @Option(help: "How many members.")
    var members: Int

    @Option(help: "The seed: the same seed writes the same files.")
    var seed: UInt64 = 1

    @Option(help: "Questions in the survey (1-512).")
    var questions: Int = 100

    @Option(name: .customLong("as-of"), help: "The moment last_active is measured back from (RFC 3339 UTC).")
    var asOf: String = Timestamp.format(SyntheticPopulation.defaultAsOf)

    @Option(name: .customLong("first-id"), help: "The first member id; ids are consecutive.")
    var firstID: UInt32 = 1

    @Option(help: "The directory to write into (created if missing).")
    var out: String

    func validate() throws {
        guard members >= 0 else { throw ValidationError("--members must not be negative") }
        guard (1...512).contains(questions) else { throw ValidationError("--questions must be 1 to 512") }
        guard Timestamp.parse(asOf) != nil else { throw ValidationError("--as-of must be an RFC 3339 UTC timestamp") }
        guard firstID >= 1, UInt64(firstID) + UInt64(members) <= UInt64(UInt32.max) + 1 else {
            throw ValidationError("--first-id: ids must stay below 2^32")
        }
    }

    func run() async throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let population = SyntheticPopulation(
            members: members, seed: seed, questions: questions, asOf: Timestamp.parse(asOf)!, firstID: firstID)
        let start = ContinuousClock.now
        let interactive = isatty(STDERR_FILENO) == 1
        try population.write(to: out) { written in
            if interactive {
                printError("\u{1B}[1A\u{1B}[2Kgenerated \(written) of \(members)")
            }
        }
        let elapsed = ContinuousClock.now - start
        printError("wrote \(members) members and \(questions) questions to \(out) in \(ProgressDisplay.seconds(elapsed)) s")
    }
}
