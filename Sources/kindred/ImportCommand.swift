import ArgumentParser
import Foundation
import KindredConfig
import KindredLogging
import KindredSupport
import Logging
import MariaDBClient
import MemberFormat
import MemberStore
import RedisClient
import Scoring
import Synchronization
import UnixSignals
import WorkQueue

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a survey and a JSON Lines members file into the member store (KINDRED_MYSQL).",
        discussion: """
            An upsert: members already stored are replaced, the same file can be imported again. \
            Members go in transactions of --batch members; if MySQL restarts meanwhile the import \
            reconnects and carries on. Rejected lines go to standard error as `line N: reason`. \
            Exit status: 0 when every line was imported (or --allow-rejects), 3 when lines were \
            rejected, 1 on any other failure. Run `kindred migrate` first. \
            SIGINT or SIGTERM: the batch in flight is committed, the import stops and prints what was \
            committed (lines read, members stored, rejects, the last committed line), and exits 130 \
            (SIGINT) or 143 (SIGTERM); a second signal exits at once. Importing the same file again \
            completes the job. \
            Afterwards the members whose change other members' sets must see are queued for the \
            worker daemons (KINDRED_QUEUE; without it the daemons' repair sweep finds them); \
            members imported before any set was built need nothing and are marked published.
            """
    )

    @OptionGroup var configOptions: ConfigOptions

    @Option(help: "The survey file (JSON).")
    var survey: String

    @Option(help: "The members file (JSON Lines); - reads standard input.")
    var members: String

    @Flag(name: .customLong("allow-rejects"), help: "Exit 0 even when some lines were rejected.")
    var allowRejects = false

    @Option(help: "Lines per transaction (1-10000); the valid members among them are committed together.")
    var batch: Int = 1000

    @OptionGroup var log: LogOptions

    func validate() throws {
        // Up to 2 x parsing threads + 2 batches of raw lines are in memory at once.
        guard (1...10_000).contains(batch) else { throw ValidationError("--batch must be 1 to 10000") }
    }

    func run() async throws {
        let configuration = try await configOptions.load()
        let url = try await mysqlURL(configOptions)
        let logOptions = log
        _ = try logOptions.logger("kindred.import", configuration: configuration)  // refuses a bad level or format now
        let queue = try configuration.queue.flatMap { $0.isEmpty ? nil : $0 }.map { _ in try queueAddress(configuration) }
        let (surveyPath, membersPath, batchSize) = (survey, members, batch)
        let interruption = ImportInterruption()
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let signalTask = Task {
            for await signal in signals {
                let status: Int32 = signal == .sigterm ? 143 : 130
                if interruption.request(status: status) {
                    printError("\n\(signal): stopping after the batch in flight (again to exit at once)")
                } else {
                    printError("\(signal): exiting now; batches committed so far stay stored, import the same file again")
                    Kindred.finish(status)
                }
            }
        }
        defer { signalTask.cancel() }
        let summary = try await runOnThread(name: "kindred-import") { () throws -> ImportSummary in
            let session = try StoreSession.connect(url: url)
            defer { session.close() }
            let display = ProgressDisplay(interactive: isatty(STDERR_FILENO) == 1)
            defer { display.finish() }
            // Log lines go above the progress bar (the display serializes them).
            let logger = try logOptions.logger(
                "kindred.import", configuration: configuration, sink: LogSink { [display] in display.message($0) })
            let importer = session.importer(options: Importer.Options(batchSize: batchSize))
            return try importer.run(
                surveyPath: surveyPath, membersPath: membersPath,
                onReject: { display.message($0.description) },
                onProgress: { display.update($0) },
                onRetry: { event in
                    logger.warning(
                        "MySQL unavailable: retrying the batch",
                        metadata: [
                            "error": "\(event.error.message)", "error_number": "\(event.error.errorNumber)",
                            "retry_in_ms": .milliseconds(event.delay), "attempt": "\(event.attempt)",
                        ])
                },
                shouldStop: { interruption.status != nil })
        }
        if summary.interrupted, let status = interruption.status {
            let progress = summary.progress
            print(
                "interrupted: committed \(ProgressDisplay.grouped(progress.members)) members from \(ProgressDisplay.grouped(progress.lines)) lines read "
                    + "(\(ProgressDisplay.grouped(progress.rejected)) rejected, \(summary.blankLines) blank); last committed line \(progress.lines)")
            print("nothing after line \(progress.lines) was stored: import the same file again to complete it (stored members are replaced, not doubled)")
            throw ExitCode(status)
        }
        let progress = summary.progress
        let seconds = ProgressDisplay.seconds(progress.elapsed)
        print(
            "imported \(ProgressDisplay.grouped(progress.members)) members from \(ProgressDisplay.grouped(progress.lines)) lines "
                + "(\(ProgressDisplay.grouped(progress.rejected)) rejected, \(summary.blankLines) blank) in \(seconds) s: "
                + "\(ProgressDisplay.grouped(Int(progress.membersPerSecond))) members/s"
                + (summary.storedSurvey ? "; stored the survey" : ""))
        let (settled, queued) = try await runOnThread(name: "kindred-import-publish") {
            try Self.publish(url: url, queue: queue)
        }
        if settled > 0 { print("\(ProgressDisplay.grouped(settled)) members marked published: every stored set already ranks them as they are") }
        if let queued {
            if queued > 0 { print("\(ProgressDisplay.grouped(queued)) changed members queued for the worker daemons to publish") }
        } else {
            print("no queue configured (KINDRED_QUEUE): the worker daemons' repair sweep publishes the changed members")
        }
        if progress.rejected > 0 && !allowRejects {
            printError("\(progress.rejected) line(s) rejected: exiting with status 3 (--allow-rejects accepts them)")
            throw ExitCode(3)
        }
    }
}

extension ImportCommand {
    /// After an import: settles the members no stored set can rank wrongly,
    /// and queues (at repair priority) every member whose change other
    /// members' sets must still see. Returns the counts (queued is nil
    /// without a queue).
    static func publish(url: String, queue: QueueAddress?) throws -> (settled: Int, queued: Int?) {
        let session = try StoreSession.connect(url: url)
        defer { session.close() }
        do {
            try session.loadSurvey()
        } catch let error as MemberStoreError where error.code == .noSurvey {
            return (0, nil)
        }
        let store = session.publications
        let settled = try store.settleAllUnpublished()
        guard let queue else { return (settled, nil) }
        let redis = try QueueConnection(address: queue, connectTimeout: .seconds(2), readTimeout: .seconds(10))
        defer { redis.close() }
        var queued = 0
        var after: MemberID = 0
        while true {
            let ids = try store.needingPublication(after: after, limit: 5000)
            guard let last = ids.last else { break }
            let result = try WorkQueue().enqueue(ids, priority: .repair, on: redis)
            queued += result.enqueued + result.promoted
            after = last
        }
        return (settled, queued)
    }
}

extension ProgressDisplay {
    func update(_ progress: ImportProgress) {
        update { Self.describe(progress, bar: $0) }
    }

    static func describe(_ progress: ImportProgress, bar: Bool) -> String {
        var text = ""
        if let fraction = progress.fraction {
            if bar { text += Self.bar(fraction) + " " }
            text += String(format: "%5.1f%% ", fraction * 100)
        }
        text += "\(grouped(progress.members)) members, \(grouped(progress.rejected)) rejected, "
            + "\(grouped(Int(progress.membersPerSecond))) members/s"
        if let fraction = progress.fraction, fraction > 0.001 {
            let elapsed = progress.elapsed.inSeconds
            text += ", ETA " + eta(Int((elapsed / fraction - elapsed).rounded()))
        }
        return text
    }
}

/// The first SIGINT/SIGTERM an import received: the exit status it asks
/// for (130 or 143). The importing thread polls it after each batch.
final class ImportInterruption: Sendable {
    /// The status asked for; 0: none yet (a signal's status is 130 or 143).
    private let requested = Atomic<Int32>(0)

    /// Records a stop; false when one was already requested.
    func request(status: Int32) -> Bool {
        precondition(status != 0, "0 means no request")
        return requested.compareExchange(expected: 0, desired: status, ordering: .relaxed).exchanged
    }

    var status: Int32? {
        let status = requested.load(ordering: .relaxed)
        return status == 0 ? nil : status
    }
}

