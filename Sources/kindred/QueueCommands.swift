import ArgumentParser
import Foundation
import KindredConfig
import KindredLogging
import KindredSupport
import MariaDBClient
import MemberStore
import RedisClient
import Scoring
import WorkQueue

/// Opens a connection to the queue Redis named by `KINDRED_QUEUE`.
func connectQueue(_ configuration: KindredConfiguration) throws -> QueueConnection {
    let address = try queueAddress(configuration)
    RedisClient.ignoreSIGPIPE()
    // A failure is reported by ErrorReport, naming KINDRED_QUEUE and the address.
    return try QueueConnection(address: address, readTimeout: .seconds(10))
}

/// Runs `body` with a connection to the queue, closed after it, on a thread
/// of its own: hiredis blocks, and blocking C calls stay off Swift's
/// cooperative pool.
func withQueue<T: Sendable>(
    _ configuration: KindredConfiguration, _ body: @escaping @Sendable (QueueConnection) throws -> T
) async throws -> T {
    try await runOnThread(name: "kindred-queue") {
        let queue = try connectQueue(configuration)
        defer { queue.close() }
        return try body(queue)
    }
}

/// An error the CLI reports as `Error: ...` with exit code 1 (no usage text).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension JobPriority: ExpressibleByArgument {
    package init?(argument: String) { self.init(name: argument) }
    package static var allValueStrings: [String] { allCases.map(\.description) }
}

struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Queue members for (re)generation of their matches.",
        discussion: "What the web site calls after a registration, a change of answers or a login."
    )

    @OptionGroup var configOptions: ConfigOptions

    @Argument(help: "Member ids.")
    var ids: [UInt32] = []

    @Flag(help: "Read member ids from standard input, one per line (blank lines skipped).")
    var stdin = false

    @Flag(help: "Every live member whose set is missing or older than their answers (from MySQL's bookkeeping).")
    var stale = false

    // Optional, with the default in the help text: swift-argument-parser
    // would print a RawRepresentable default as its raw value ("default: 0").
    @Option(help: "interactive (served first: a member waiting for their matches), repair, or backfill (served last); default: interactive.")
    var priority: JobPriority?

    func validate() throws {
        if ids.isEmpty && !stdin && !stale { throw ValidationError("give member ids, --stdin or --stale") }
        if ids.contains(0) { throw ValidationError("member ids are positive integers below 2^32") }
    }

    func run() async throws {
        let configuration = try await configOptions.load()
        var members = ids
        if stdin {
            var lineNumber = 0
            while let line = readLine() {
                lineNumber += 1
                let text = line.trimmingCharacters(in: .whitespaces)
                if text.isEmpty { continue }
                guard let id = UInt32(text), id > 0 else {
                    throw CLIError("stdin line \(lineNumber): not a member id (a positive integer below 2^32)")
                }
                members.append(id)
            }
        }
        if stale {
            let mysql = try mysqlConfiguration(configuration)
            members += try await runOnThread(name: "kindred-stale") { () throws -> [UInt32] in
                let session = try StoreSession.connect(StoreConfiguration(mysql: mysql))
                defer { session.close() }
                var all: [UInt32] = []
                var after: UInt32 = 0
                while let page = Optional(try session.generations.staleOrMissingIDs(after: after, limit: 10_000)),
                    let last = page.last
                {
                    all += page
                    after = last
                }
                return all
            }
        }
        let priority = self.priority ?? .interactive
        let chosen = members
        let result = try await withQueue(configuration) { try WorkQueue().enqueue(chosen, priority: priority, on: $0) }
        print(
            "enqueued \(result.enqueued), promoted \(result.promoted), already waiting \(result.alreadyWaiting), "
                + "already delayed (retrying) \(result.alreadyDelayed) (\(priority))")
    }
}

struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Inspect the work queue and its dead letters.",
        subcommands: [Stats.self, Dead.self, Retry.self]
    )

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Waiting jobs per priority, delayed, in flight, dead, workers.",
            discussion: "--json prints one object; its fields are listed in docs/cli.md.")
        @OptionGroup var configOptions: ConfigOptions

        @Flag(help: "Print one JSON object (fields: waiting.{interactive,repair,backfill}, delayed, processing, oldest_processing_ms, dead, workers).")
        var json = false

        func run() async throws {
            let stats = try await withQueue(try await configOptions.load()) { try WorkQueue().stats(on: $0) }
            if json {
                print(try CommandJSON.line(CommandJSON.Queue(stats)))
                return
            }
            for priority in JobPriority.allCases {
                print("waiting \(priority): \(stats.waiting[priority] ?? 0)")
            }
            print("delayed (retrying): \(stats.delayed)")
            print("processing: \(stats.processing) (oldest \(stats.oldestProcessingAge) ms)")
            print("dead: \(stats.dead)")
            print("workers: \(stats.workers)")
        }
    }

    struct Dead: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List jobs that failed their last attempt, with the reason; or delete them.",
            discussion: """
                Without --delete: lists the dead jobs, oldest death first. With --delete ID... or --delete --all: \
                removes those dead jobs from the queue for good (`kindred queue retry` runs them again instead). \
                A member's set that is still missing or stale is queued again by the worker daemons' repair sweep.
                """)
        @OptionGroup var configOptions: ConfigOptions

        @Flag(help: "Delete the dead jobs of the given member ids (or with --all, every dead job).")
        var delete = false

        @Flag(help: "With --delete: every dead job.")
        var all = false

        @Argument(help: "With --delete: the member ids whose dead jobs to delete.")
        var ids: [UInt32] = []

        @Flag(help: "Print one JSON object: {\"dead\": [{\"member\", \"priority\", \"attempts\", \"died_at\", \"reason\"}]}, or {\"deleted\": N} with --delete.")
        var json = false

        func validate() throws {
            if delete {
                if ids.isEmpty == !all { throw ValidationError("--delete takes member ids or --all (not both)") }
            } else {
                if all { throw ValidationError("--all goes with --delete (listing shows every dead job)") }
                if !ids.isEmpty { throw ValidationError("member ids go with --delete") }
            }
        }

        func run() async throws {
            let configuration = try await configOptions.load()
            if delete {
                let chosen = all ? nil : ids
                let deleted = try await withQueue(configuration) { try WorkQueue().deleteDead(chosen, on: $0) }
                if json {
                    print(try CommandJSON.line(CommandJSON.Deleted(deleted: deleted)))
                } else {
                    print("deleted \(deleted) dead job(s)")
                }
                return
            }
            let jobs = try await withQueue(configuration) { try WorkQueue().deadJobs(on: $0) }
            if json {
                print(try CommandJSON.line(CommandJSON.Dead(dead: jobs.map(CommandJSON.DeadJobEntry.init))))
                return
            }
            if jobs.isEmpty {
                print("no dead jobs")
                return
            }
            print("member      priority     attempts  died at                   reason")
            for job in jobs {
                let when = LogRecord.WallTime(unixMilliseconds: job.diedAt).rfc3339
                print("\(String(job.member).padding(toLength: 10, withPad: " ", startingAt: 0))  "
                    + "\(job.priority.description.padding(toLength: 11, withPad: " ", startingAt: 0))  "
                    + "\(String(job.attempts).padding(toLength: 8, withPad: " ", startingAt: 0))  \(when)  \(job.reason)")
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-drive dead jobs (the given ids, or all).")
        @OptionGroup var configOptions: ConfigOptions

        @Argument(help: "Member ids; none with --all.")
        var ids: [UInt32] = []

        @Flag(help: "Every dead job.")
        var all = false

        func validate() throws {
            if ids.isEmpty != all { throw ValidationError("give member ids or --all (not both)") }
        }

        func run() async throws {
            let chosen = all ? nil : ids
            let moved = try await withQueue(try await configOptions.load()) { try WorkQueue().retryDead(chosen, on: $0) }
            print("re-driven \(moved) dead job(s)")
        }
    }
}
