import Foundation
import KindredCore
import KindredRuns
import KindredSupport
import KindredWorker
import Logging
import MemberStore
import MetricsEndpoint
import Prometheus
import RedisClient
import ScoreStore
import ServiceLifecycle
import WebAPI
import WorkQueue

// One composition root per program: each assembles exactly the parts it
// uses from explicit dependencies (the commands parse the settings and hand
// them over), as Hummingbird builds an `Application`. No part is built for
// a program that does not read it.

/// `kindred worker`: the generation core (publishing: it keeps the set
/// index), the worker's runtime (its settings, the queue with its job
/// retries, process id, activity, throughput), its services, and the
/// metrics endpoint with the worker's readiness probe.
enum WorkerAssembly {
    static func assemble(
        store: StoreConfiguration, queue: QueueAddress, generation: GenerationSettings, worker: WorkerSettings,
        metrics listen: (host: String, port: Int)?, logger: Logger
    ) async throws -> (runtime: WorkerRuntime, services: [any Service]) {
        var generation = generation
        generation.publishes = true
        let registry = PrometheusCollectorRegistry()
        let metrics = KindredMetrics.prometheus(registry: registry, program: .worker)
        let settings = generation
        let (core, _) = try await runOnThread(name: "kindred-bootstrap") {
            try Bootstrap.load(store: store, queue: queue, settings: settings, metrics: metrics, logger: logger)
        }
        let runtime = WorkerRuntime(core: core, settings: worker)
        var metricsServer: (any Service)?
        if let listen {
            let (host, port) = listen
            metricsServer = MetricsServer.make(
                registry: registry, host: host, port: port, logger: logger,
                probe: { [probe = WorkerProbe(runtime: runtime)] in probe.readiness() },
                onServerRunning: { port in
                    logger.info("metrics", metadata: ["address": "http://\(host):\(port)/metrics"])
                })
        }
        return (runtime, WorkerDaemon.services(runtime, metricsServer: metricsServer))
    }
}

/// `kindred serve`: the generation core (not publishing: on-read rebuilds
/// write own sets only), a score store tuned to fail fast, the queue the
/// web backend writes to (deletion and block marks, rebuild requests), the
/// backend and its HTTP services.
enum ServeAssembly {
    static func assemble(
        store: StoreConfiguration, queue: QueueAddress, generation: GenerationSettings, web: WebSettings,
        host: String, port: Int, token: String, logger: Logger
    ) async throws -> [any Service] {
        var generation = generation
        generation.publishes = false  // on-read rebuilds write own sets; the worker publishes changes
        let registry = PrometheusCollectorRegistry()
        let metrics = KindredMetrics.prometheus(registry: registry, program: .serve)
        // Reads must fail fast when a shard is down: short timeouts, and the breaker does the rest.
        var manager = ShardConnectionManager.Configuration()
        manager.connectTimeout = .milliseconds(250)
        manager.readTimeout = .milliseconds(800)
        manager.maxConnectionsPerShard = web.ioThreads + web.readThreads + web.generationThreads
        manager.clientName = "kindred-web"
        let settings = generation
        let managerConfiguration = manager
        let (core, _) = try await runOnThread(name: "kindred-bootstrap") {
            try Bootstrap.load(
                store: store, queue: queue, settings: settings, metrics: metrics, logger: logger,
                scoreConfiguration: WebSettings.scoreStore, managerConfiguration: managerConfiguration)
        }
        let backend = WebBackend(core: core, queue: WorkQueue(), settings: web)
        return WebServer.services(
            backend: backend, host: host, port: port, token: token, registry: registry,
            onServerRunning: { port in
                logger.info("serving", metadata: ["address": "http://\(host):\(port)"])
            })
    }
}

/// `kindred backfill`: the generation core (not publishing; its metrics
/// only time the phases for the summary), the snapshot refresher, and the
/// run with the queue when its address was given. Blocking: runs on the
/// run's thread (``runWithSignals(logger:progressEvery:_:)``).
enum BackfillAssembly {
    static func assemble(
        store: StoreConfiguration, queue: QueueAddress?, generation: GenerationSettings, options: Backfill.Options, logger: Logger,
        display: @escaping (RunEvent) -> Void
    ) throws -> RunStart {
        display(.message("loading the member snapshot..."))
        var generation = generation
        generation.publishes = false  // backfill rebuilds own sets; the worker publishes changes
        let phases = PhaseTotals()
        let (core, _) = try Bootstrap.load(
            store: store, queue: queue, settings: generation, metrics: KindredMetrics(factory: phases), logger: logger)
        let backfill = Backfill(core: core, queue: WorkQueue(), options: options, phases: phases)
        return RunStart(refresher: Maintenance.refresher(core)) { stop in try backfill.run(stop: stop) { display($0) } }
    }
}

/// `kindred evict`: MySQL sessions and the score store over the listed
/// shards; no snapshot, refresher, directory, queue or metrics. Blocking:
/// runs on the run's thread.
enum EvictAssembly {
    static func assemble(
        store: StoreConfiguration, mysqlPauseLimit: Duration, options: Evict.Options, logger: Logger,
        display: @escaping (RunEvent) -> Void
    ) throws -> RunStart {
        RedisClient.ignoreSIGPIPE()
        var store = store
        let session = try Bootstrap.connectAtStart(store, logger: logger)
        defer { session.close() }
        guard let survey = try session.storedSurvey() else {
            throw MemberStoreError(.noSurvey, "no survey stored yet: run `kindred import` first")
        }
        store.survey = survey
        let scores = try Bootstrap.scoreStore(session, logger: logger)
        let evict = Evict(store: store, scores: scores, mysqlPauseLimit: mysqlPauseLimit, logger: logger, options: options)
        return RunStart(refresher: nil) { stop in try evict.run(stop: stop) { display($0) } }
    }
}
