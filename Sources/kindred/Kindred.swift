import ArgumentParser
import Foundation
import KindredSupport

/// `kindred`: one executable with a subcommand per program. This target only
/// parses arguments and wires library services together.
@main
struct Kindred: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kindred",
        abstract: "Precomputed dating-site compatibility scores.",
        discussion: """
            Settings come from a JSON config file (--config or KINDRED_CONFIG), overridden by KINDRED_* \
            environment variables, overridden by flags; see docs/configuration.md. Errors go to standard \
            error as `Error: ...` with exit status 1 unless a command documents another.
            """,
        version: KindredVersion.current,
        subcommands: [
            GenerateCommand.self,
            MatchesCommand.self,
            MigrateCommand.self,
            ImportCommand.self,
            ShardsCommand.self,
            WorkerCommand.self,
            EnqueueCommand.self,
            QueueCommand.self,
            StatusCommand.self,
            ServeCommand.self,
            BackfillCommand.self,
            EvictCommand.self,
        ]
    )

    /// Parses, runs, and reports a failure as what to do about it
    /// (``ErrorReport``) instead of the error's debug form.
    static func main() async {
        var command: any ParsableCommand
        do {
            command = try await asyncParseAsRoot()
        } catch {
            Self.exit(withError: error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard let message = ErrorReport.message(for: error) else { Self.exit(withError: error) }
            printError("Error: " + message)
            Foundation.exit(1)
        }
    }
}
