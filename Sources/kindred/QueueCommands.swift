import ArgumentParser
import Foundation
import KindredConfig
import MariaDBClient
import MemberStore
import RedisClient
import Scoring
import WorkQueue

/// Opens a connection to the queue Redis named by `KINDRED_QUEUE`.
func connectQueue(_ configuration: KindredConfiguration) throws -> RedisConnection {
    let url = try queueAddress(configuration)
    RedisClient.ignoreSIGPIPE()
    do {
        return try RedisConnection(configuration: url.configuration(readTimeout: .seconds(10)))
    } catch {
        throw CLIError("cannot reach the queue at \(url): \(error)")
    }
}

/// An error the CLI reports as `Error: ...` with exit code 1 (no usage text).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension JobPriority: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.description) }
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

    @Option(help: "interactive, repair or backfill.")
    var priority: JobPriority = .interactive

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
            members += try await onDedicatedThread(name: "kindred-stale") { () throws -> [UInt32] in
                let connection = try MariaDBConnection(configuration: mysql)
                defer { connection.close() }
                var all: [UInt32] = []
                var after: UInt32 = 0
                while let page = Optional(try GenerationStore(connection: connection).staleOrMissingIDs(after: after, limit: 10_000)),
                    let last = page.last
                {
                    all += page
                    after = last
                }
                return all
            }
        }
        let redis = try connectQueue(configuration)
        let result = try WorkQueue().enqueue(members, priority: priority, on: redis)
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
        static let configuration = CommandConfiguration(abstract: "Waiting jobs per priority, delayed, in flight, dead, workers.")
        @OptionGroup var configOptions: ConfigOptions

        func run() async throws {
            let redis = try connectQueue(try await configOptions.load())
            let stats = try WorkQueue().stats(on: redis)
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
        static let configuration = CommandConfiguration(abstract: "List jobs that failed their last attempt, with the reason.")
        @OptionGroup var configOptions: ConfigOptions

        func run() async throws {
            let redis = try connectQueue(try await configOptions.load())
            let jobs = try WorkQueue().deadJobs(on: redis)
            if jobs.isEmpty {
                print("no dead jobs")
                return
            }
            print("member      priority     attempts  died at               reason")
            for job in jobs {
                let when = Date(timeIntervalSince1970: Double(job.diedAt) / 1000).ISO8601Format()
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
            let redis = try connectQueue(try await configOptions.load())
            let moved = try WorkQueue().retryDead(all ? nil : ids, on: redis)
            print("re-driven \(moved) dead job(s)")
        }
    }
}
