import ArgumentParser
import Foundation
import KindredConfig
import KindredCore
import KindredRuns
import KindredSupport
import Logging
import MemberStore
import RedisClient
import Scoring

struct EvictCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evict",
        abstract: "Drop the sets of members dormant for a given time, release their shard and forget their generation.",
        discussion: """
            --dormant-for D selects members with last_active < now - D (exclusive) and members never active, \
            who hold a set or a shard. Each is re-checked inside a MySQL transaction (a member who logged in \
            meanwhile is skipped), then their set is removed from its shard. The repair sweep leaves evicted \
            members alone until they are active again; a login (enqueue) or a read rebuilds their set on \
            demand. Resumable like backfill (checkpoint in MySQL, --restart); Ctrl-C finishes the batch in \
            flight. Exit status: 0 done; 1 some members failed; 130 interrupted.
            """
    )

    @Option(name: .customLong("dormant-for"), help: "Evict members not active for this long (e.g. 180d), and members never active.")
    var dormantFor: String

    @OptionGroup var run: RunOptions
    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var log: LogOptions

    func validate() throws {
        _ = try duration(dormantFor, option: "--dormant-for")
    }

    func run() async throws {
        let configuration = try await configOptions.load()
        let logger = try log.logger("kindred.evict", configuration: configuration, defaultLevel: .warning)
        let mysql = try mysqlConfiguration(configuration)
        let (now, explicitNow) = try run.nowSeconds()
        let pauseLimit = GenerationSettings().mysqlPauseLimit
        var options = Evict.Options(
            selection: RunSelection(dormantFor: try duration(dormantFor, option: "--dormant-for"), explicitNow: explicitNow),
            now: now, rate: run.rate)
        options.dryRun = run.dryRun
        options.topN = configuration.scoring.topN
        options.restart = run.restart
        let finalOptions = options
        let store = StoreConfiguration(mysql: mysql, retry: RetryPolicy(giveUpAfter: .seconds(5)))
        let report = try await runWithSignals(logger: logger, progressEvery: run.progressEvery) { display in
            // An evict reads no snapshot and no queue: MySQL sessions and the score store are all it assembles.
            try EvictAssembly.assemble(store: store, mysqlPauseLimit: pauseLimit, options: finalOptions, logger: logger, display: display)
        }
        try finish(report, noun: "evicted")
    }
}
