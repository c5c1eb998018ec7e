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
            SynthesizeCommand.self,
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
        } catch let code as ExitCode {
            // Its message, if any, is printed already (the command documents the status).
            finish(code.rawValue)
        } catch {
            guard let message = ErrorReport.message(for: error) else { Self.exit(withError: error) }
            printError("Error: " + message)
            finish(1)
        }
        finish(0)
    }

    /// Ends the process once a command is done: flushes standard output and
    /// error, then `_exit`, without `exit`'s atexit handlers and static
    /// destructors.
    ///
    /// Threads a command leaves behind (the logger's, the runtime's, a
    /// library's) can still be running when it returns; `exit` destroys the
    /// C++ statics they may be using. One `kindred backfill --dry-run` died
    /// that way at exit ("double free or corruption", status 134, its
    /// printed plan lost with the unflushed buffer) and did not recur in
    /// ~380 runs; ending without the destructors rules the whole class out.
    static func finish(_ status: Int32) -> Never {
        fflush(nil)
        _exit(status)
    }
}
