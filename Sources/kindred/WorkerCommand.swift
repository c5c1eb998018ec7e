import ArgumentParser
import Foundation
import KindredConfig
import KindredCore
import KindredSupport
import KindredWorker
import Logging
import MariaDBClient
import MemberStore
import MetricsEndpoint
import Prometheus
import RedisClient
import Scoring
import ServiceLifecycle
import UnixSignals
import WorkQueue

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run the worker daemon: generation workers on the queue, plus snapshot refresh, reaper, repair sweep, shard watcher and metrics.",
        usage: "kindred worker [--workers <n>] [--metrics <host:port>|off] [OPTIONS]",
        discussion: """
            Needs KINDRED_MYSQL and KINDRED_QUEUE. Serves Prometheus metrics on KINDRED_METRICS \
            (default 127.0.0.1:9464), with /livez and /readyz for probes \
            (docs/observability.md). SIGTERM or SIGINT: stop taking jobs, finish the ones in flight \
            (handing back any that do not finish within --shutdown-timeout) and exit.
            """
    )

    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var scoring: ScoringOptions

    @Option(help: "Generation workers (default: $KINDRED_WORKERS, else the number of cores).")
    var workers: Int?

    @Option(help: "Where to serve metrics, HOST:PORT (default: $KINDRED_METRICS, else 127.0.0.1:9464); 'off' disables.")
    var metrics: String?

    @Option(name: .customLong("active-window"), help: "Members active within this many days (or holding a shard) should have a set.")
    var activeWindowDays: Int = 90

    @Option(name: .customLong("shutdown-timeout"), help: "Seconds a graceful stop waits for jobs in flight.")
    var shutdownTimeout: Int = 15

    @Option(name: .customLong("sweep-interval"), help: "Seconds between repair sweeps (sets missing or stale, changes not yet published).")
    var sweepInterval: Int = 300

    @Option(name: .customLong("audit-interval"), help: "Seconds between set audits (sets on the wrong shard or of the wrong write, orphans, a recomputed sample).")
    var auditInterval: Int = 600

    @Option(name: .customLong("audit-sample"), help: "Sets each audit recomputes from the snapshot and compares with its shard.")
    var auditSample: Int = 50

    @OptionGroup var log: LogOptions

    func validate() throws {
        if let workers, !(1...256).contains(workers) { throw ValidationError("--workers must be 1 to 256") }
        guard activeWindowDays >= 0 else { throw ValidationError("--active-window must not be negative") }
        guard shutdownTimeout >= 1 else { throw ValidationError("--shutdown-timeout must be at least 1 second") }
        guard sweepInterval >= 1 else { throw ValidationError("--sweep-interval must be at least 1 second") }
        guard auditInterval >= 1 else { throw ValidationError("--audit-interval must be at least 1 second") }
        guard auditSample >= 0 else { throw ValidationError("--audit-sample must not be negative") }
    }

    func run() async throws {
        let configuration = try await configOptions.load()
        let logger = try log.logger("kindred.worker", configuration: configuration)
        let mysql = try mysqlConfiguration(configuration)
        let queue = try queueAddress(configuration)
        let generation = GenerationSettings(scoring: try scoring.apply(to: configuration.scoring))
        var settings = WorkerSettings(
            workers: try workers ?? configuration.integer("workers", default: ProcessInfo.processInfo.activeProcessorCount))
        settings.activeWindow = .seconds(activeWindowDays * 86_400)
        settings.shutdownTimeout = .seconds(shutdownTimeout)
        settings.sweepInterval = .seconds(sweepInterval)
        settings.auditInterval = .seconds(auditInterval)
        settings.auditSample = auditSample
        let listen = metrics ?? configuration.metrics
        var endpoint: (host: String, port: Int)?
        if listen != "off" { endpoint = try hostAndPort(listen, setting: "KINDRED_METRICS") }
        let (runtime, services) = try await WorkerAssembly.assemble(
            store: StoreConfiguration(mysql: mysql), queue: queue, generation: generation, worker: settings, metrics: endpoint,
            logger: logger)
        logger.info("worker starting", metadata: ["workers": "\(settings.workers)", "process": "\(runtime.processID)"])
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        logger.info("worker stopped")
    }
}
