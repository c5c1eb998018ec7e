import ArgumentParser

/// `kindred`: one executable with a subcommand per program. This target only
/// parses arguments and wires library services together.
@main
struct Kindred: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kindred",
        abstract: "Precomputed dating-site compatibility scores.",
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
}
