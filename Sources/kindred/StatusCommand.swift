import ArgumentParser
import Foundation
import KindredSupport
import MariaDBClient
import MemberStore
import RedisClient
import WorkQueue

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Members, their sets (current, stale, missing) and the queue, in one look.",
        discussion: """
            With --wait-idle it blocks until the queue is empty (nothing waiting, retrying or in flight), up to \
            --timeout seconds (then exit status 1). --json prints one object; its fields are listed in docs/cli.md.
            """
    )

    @OptionGroup var configOptions: ConfigOptions

    @Flag(name: .customLong("wait-idle"), help: "Wait until the queue is idle before printing.")
    var waitIdle = false

    @Option(help: "Seconds --wait-idle waits at most.")
    var timeout: Int = 300

    @Flag(help: "Print one JSON object: members.{live,deleted}, sets.{current,stale,missing}, queue (as `queue stats --json`).")
    var json = false

    func validate() throws {
        guard timeout >= 0 else { throw ValidationError("--timeout must not be negative") }
    }

    func run() async throws {
        let configuration = try await configOptions.load()
        let mysql = try mysqlConfiguration(configuration)
        if waitIdle {
            let timeout = self.timeout
            try await withQueue(configuration) { redis in
                let deadline = ContinuousClock.now.advanced(by: .seconds(timeout))
                while true {
                    let stats = try WorkQueue().stats(on: redis)
                    if stats.waiting.values.reduce(0, +) == 0 && stats.delayed == 0 && stats.processing == 0 { break }
                    guard ContinuousClock.now < deadline else { throw CLIError("the queue is still busy after \(timeout) s") }
                    sleepThread(.milliseconds(250))
                }
            }
        }
        let (members, generations) = try await runOnThread(name: "kindred-status") { () throws -> (MemberCounts, GenerationCounts) in
            let session = try StoreSession.connect(StoreConfiguration(mysql: mysql))
            defer { session.close() }
            try session.loadSurvey()
            return (try session.members.counts(), try session.generations.counts())
        }
        let stats = try await withQueue(configuration) { try WorkQueue().stats(on: $0) }
        if json {
            print(try CommandJSON.line(CommandJSON.Status(members: members, generations: generations, queue: stats)))
            return
        }
        print("members: \(members.live) live, \(members.deleted) deleted")
        print("sets: \(generations.generated - generations.stale) current, \(generations.stale) stale, \(generations.missing) never generated")
        print("queue: \(stats.waiting[.interactive] ?? 0) interactive, \(stats.waiting[.repair] ?? 0) repair, \(stats.waiting[.backfill] ?? 0) backfill waiting; "
            + "\(stats.delayed) retrying, \(stats.processing) in flight, \(stats.dead) dead; \(stats.workers) workers")
    }
}
