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
import ServiceLifecycle
import Synchronization
import UnixSignals
import WorkQueue

struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Rebuild the sets of members selected by activity whose set is missing or stale, in bulk, resumably.",
        usage: """
            kindred backfill (--all | --ids <file> | --active-within <d> | --since <t> | --dormant-for <d>) [--via-queue] [--now <t>] [--rate <n>] [--dry-run] [--restart] [OPTIONS]
            """,
        discussion: """
            Windows are measured from --now (default: the clock when the run first starts): \
            --active-within D selects last_active >= now - D (inclusive); --since T selects last_active >= T \
            (inclusive); --dormant-for D selects last_active < now - D (exclusive) and members never active. \
            --dormant-for may be combined with --active-within or --since (then never-active members are out). \
            Durations: 90d, 12h, 2w, 30m, 45s, or sums like 1w2d.

            Every selected member without a shard gets one (weights honoured); the run refuses, before \
            writing anything, when the new sets would not fit a shard's memory budget. Members are done in \
            ascending id order by --concurrency threads running the worker's own job (or, with --via-queue, \
            enqueued at backfill priority for the daemons); the checkpoint in MySQL lets the same command \
            resume after Ctrl-C, SIGTERM or a crash without redoing finished members (--restart starts over). \
            Ctrl-C: finish the members in flight, save the checkpoint, exit (a second Ctrl-C exits at once). \
            In process, sets that fall below N are queued for repair on KINDRED_QUEUE when it is set (a \
            malformed address is an error; unset, the run says so and the daemons' repair sweep finds them).

            Exit status: 0 done; 1 some members failed (listed with reasons) or an error; 3 refused (memory \
            budget); 130 interrupted (run the same command to resume).
            """
    )

    @Option(name: .customLong("active-within"), help: "Members active within this long before now (e.g. 90d).")
    var activeWithin: String?

    @Option(help: "Members active at or after this date (YYYY-MM-DD or RFC 3339).")
    var since: String?

    @Option(name: .customLong("dormant-for"), help: "Members not active for this long (e.g. 180d), and members never active.")
    var dormantFor: String?

    @Option(help: "A file of member ids, one per line (blank lines and # comments skipped).")
    var ids: String?

    @Flag(help: "Every live member.")
    var all = false

    @Flag(name: .customLong("via-queue"), help: "Enqueue the members at backfill priority for the running worker daemons instead of rebuilding here.")
    var viaQueue = false

    @Option(help: "Generation threads in this process (default: $KINDRED_WORKERS, else the number of cores).")
    var concurrency: Int?

    @OptionGroup var run: RunOptions
    @OptionGroup var scoring: ScoringOptions
    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var log: LogOptions

    func validate() throws {
        if let concurrency, !(1...256).contains(concurrency) { throw ValidationError("--concurrency must be 1 to 256") }
        if viaQueue && concurrency != nil { throw ValidationError("--concurrency is for rebuilding in this process, not with --via-queue") }
        let selection = try selection(explicitNow: nil)
        do { try selection.validate() } catch { throw ValidationError(error.description) }
    }

    func selection(explicitNow: Int64?) throws -> RunSelection {
        RunSelection(
            activeWithin: try activeWithin.map { try duration($0, option: "--active-within") },
            since: try since.map { try instant($0, option: "--since") },
            dormantFor: try dormantFor.map { try duration($0, option: "--dormant-for") },
            ids: try ids.map { try readIDs($0) }, all: all, explicitNow: explicitNow)
    }

    func run() async throws {
        let configuration = try await configOptions.load()
        let logger = try log.logger("kindred.backfill", configuration: configuration, defaultLevel: .warning)
        let mysql = try mysqlConfiguration(configuration)
        // --via-queue needs the queue; in process it only takes the sets that fell below N for repair, when one is configured.
        let queue = viaQueue ? try queueAddress(configuration) : try optionalQueueAddress(configuration)
        if queue == nil {
            printError("no queue configured (KINDRED_QUEUE): sets that fall below N will not be queued for repair")
        }
        let (now, explicitNow) = try run.nowSeconds()
        let threads = try concurrency ?? configuration.integer("workers", default: ProcessInfo.processInfo.activeProcessorCount)
        var generation = GenerationSettings(scoring: try scoring.apply(to: configuration.scoring))
        generation.mysqlRetry = RetryPolicy(giveUpAfter: .seconds(5))
        var options = Backfill.Options(selection: try selection(explicitNow: explicitNow), now: now, concurrency: threads, rate: run.rate)
        options.dryRun = run.dryRun
        options.restart = run.restart
        options.viaQueue = viaQueue
        let store = StoreConfiguration(mysql: mysql)
        let finalGeneration = generation
        let finalOptions = options
        let report = try await runWithSignals(logger: logger, progressEvery: run.progressEvery) { display in
            try BackfillAssembly.assemble(
                store: store, queue: queue, generation: finalGeneration, options: finalOptions, logger: logger, display: display)
        }
        try finish(report, noun: viaQueue ? "queued" : "rebuilt")
    }
}

/// What a run command hands ``runWithSignals(logger:progressEvery:_:)``
/// once it has assembled its parts: the service that keeps its snapshot
/// fresh while it runs (none when it reads no snapshot), and the run itself.
struct RunStart {
    var refresher: ThreadsService?
    var body: (StopSignal) throws -> RunReport
}

/// Runs a backfill or an evict: assembles it on a thread of its own, keeps
/// its snapshot (if any) fresh meanwhile, turns the first SIGINT/SIGTERM into a
/// graceful stop (the second exits at once), shows progress, and returns
/// the report.
func runWithSignals(
    logger: Logger, progressEvery: Double,
    _ start: @escaping @Sendable (_ display: @escaping (RunEvent) -> Void) throws -> RunStart
) async throws -> RunReport {
    let stop = StopSignal()
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    let signalTask = Task {
        var count = 0
        for await signal in signals {
            count += 1
            if count == 1 {
                printError("\n\(signal): stopping after the members in flight (again to exit at once)")
                stop.stop()
            } else {
                printError("\(signal): exiting now; run the same command to resume from the last checkpoint")
                Kindred.finish(130)
            }
        }
    }
    defer { signalTask.cancel() }
    RedisClient.ignoreSIGPIPE()
    do {
        return try await run(start: start, stop: stop, progressEvery: progressEvery)
    } catch let refusal as RunRefusal {
        printError(refusal.description)
        throw ExitCode(refusal.kind == .memoryBudget ? 3 : 1)
    }
}

private func run(
    start: @escaping @Sendable (_ display: @escaping (RunEvent) -> Void) throws -> RunStart, stop: StopSignal,
    progressEvery: Double
) async throws -> RunReport {
    try await withThrowingTaskGroup(of: RunReport?.self) { group in
        let box = RefresherBox()
        group.addTask {
            try await runOnThread(name: "kindred-run") { () throws -> RunReport in
                let display = ProgressDisplay(
                    interactive: ProgressDisplay.standardErrorIsTerminal, plainInterval: .seconds(progressEvery))
                defer { display.finish() }
                let show: (RunEvent) -> Void = { event in
                    switch event {
                    case .message(let text): display.message(text)
                    case .progress(let status): display.update { describe(status, bar: $0) }
                    case .finalProgress(let status): display.update(force: true) { describe(status, bar: $0) }
                    }
                }
                let start = try start(show)
                if let refresher = start.refresher { box.start(refresher) }
                defer { box.stop() }
                return try start.body(stop)
            }
        }
        defer { group.cancelAll() }
        guard let report = try await group.next() ?? nil else { throw CLIError("the run ended without a report") }
        return report
    }
}

/// The snapshot refresher, started once the run is assembled and stopped
/// with the run.
final class RefresherBox: Sendable {
    private let task = Mutex<Task<Void, any Error>?>(nil)

    func start(_ service: ThreadsService) {
        task.withLock { task in
            task = Task { try await service.run() }
        }
    }

    func stop() {
        task.withLock { $0?.cancel() }
    }
}

/// `[####....] 45.0% 450/1,000 members, 123/s, ETA 0:04, 3 failed, 20 skipped`.
func describe(_ status: RunStatus, bar: Bool) -> String {
    var text = ""
    if let fraction = status.fraction {
        if bar { text += ProgressDisplay.bar(fraction) + " " }
        text += String(format: "%5.1f%% ", fraction * 100)
    }
    text += "\(ProgressDisplay.grouped(status.finished))/\(ProgressDisplay.grouped(status.total)) members, "
        + "\(ProgressDisplay.grouped(Int(status.rate.rounded())))/s"
    if let remaining = status.remaining { text += ", ETA " + ProgressDisplay.eta(Int(remaining.components.seconds)) }
    text += ", \(ProgressDisplay.grouped(status.failed)) failed, \(ProgressDisplay.grouped(status.skipped)) skipped"
    return text
}

/// Prints the report's summary on standard output and exits with the run's status.
func finish(_ report: RunReport, noun: String) throws {
    if report.dryRun {
        for line in report.planLines { print(line) }
        return
    }
    let counts = report.counts
    let session = report.session
    let minutes = max(report.elapsed.inSeconds, 0.001) / 60
    var summary = "\(report.interrupted ? "interrupted" : "done"): run \(report.runID.map(String.init) ?? "-"): "
        + "\(counts.done) \(noun), \(counts.skipped) skipped, "
    if counts.gone > 0 || noun != "evicted" { summary += "\(counts.gone) deleted meanwhile, " }
    summary += "\(counts.failed) failed"
    print(summary)
    print(
        "this session: \(session.done) \(noun), \(session.failed) failed in \(ProgressDisplay.seconds(report.elapsed)) s "
            + "(\(ProgressDisplay.grouped(Int((Double(session.done + session.gone + session.failed) / minutes).rounded()))) members/min)")
    for note in report.notes { print(note) }
    for failure in report.failureReasons {
        let more = failure.count > failure.members.count ? ", ..." : ""
        print("failed \(failure.count): \(failure.reason) (member\(failure.count == 1 ? "" : "s") "
            + failure.members.map(String.init).joined(separator: ", ") + more + ")")
    }
    if report.interrupted {
        print("resume with the same command (the checkpoint is in MySQL); --restart starts over")
        throw ExitCode(130)
    }
    if counts.failed > 0 { throw ExitCode(1) }
}
