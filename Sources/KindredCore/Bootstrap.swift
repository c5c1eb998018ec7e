import Foundation
import KindredLogging
import KindredSupport
import Logging
import MemberStore
import RedisClient
import Scoring
import ScoreStore
import WorkQueue
import ServiceLifecycle

/// What every program does at start: reach MySQL, check the schema, load
/// what it reads (the survey, the snapshot, the set index, the shard list)
/// and build the shared parts from it.
package enum Bootstrap {
    /// Connects to MySQL (waiting up to `startupTimeout` for it, with
    /// backoff), checks the schema, loads the survey, the full snapshot and
    /// the shard list, and builds the generation core. `store`'s retry
    /// budget and survey are replaced by `settings.mysqlRetry` and the
    /// stored survey; `queue` is the address the core's session factory
    /// gives threads that use the queue (nil: the program uses none).
    ///
    /// Blocking: call it from a dedicated thread (`runOnThread`).
    package static func load(
        store: StoreConfiguration, queue: QueueAddress?, settings: GenerationSettings, metrics: KindredMetrics,
        logger: Logger, scoreConfiguration: ScoreStore.Configuration = ScoreStore.Configuration(),
        managerConfiguration: ShardConnectionManager.Configuration = ShardConnectionManager.Configuration(),
        startupTimeout: Duration = .seconds(60)
    ) throws -> (core: GenerationCore, watermark: SnapshotWatermark) {
        RedisClient.ignoreSIGPIPE()
        var store = store
        store.retry = settings.mysqlRetry
        store.survey = nil
        let session = try StoreSession.connect(store, waitingUpTo: startupTimeout, onRetry: logStartupRetry(logger))
        defer { session.close() }
        try session.requireUpToDate()
        guard let survey = try session.storedSurvey() else {
            throw MemberStoreError(.noSurvey, "no survey stored yet: run `kindred import` first")
        }
        let started = ContinuousClock.now
        var invalid = 0
        let (population, watermark) = try session.snapshot(overlap: settings.snapshotOverlap).load { row in
            invalid += 1
            logger.error("stored member breaks the rules: left out of the snapshot", metadata: ["member": "\(row.id)", "reason": "\(row.reason)"])
        }
        logger.info(
            "snapshot loaded",
            metadata: ["members": "\(population.count)", "invalid": "\(invalid)", "took_ms": .milliseconds(ContinuousClock.now - started)])
        let sets = SetIndex()
        var setsWatermark: ServerTime?
        if settings.publishes {
            let records = try session.generations.setRecords(recordedAfter: nil, overlap: settings.snapshotOverlap)
            sets.apply(records.records)
            setsWatermark = records.watermark
        }
        let scores = try scoreStore(
            session, logger: logger, configuration: scoreConfiguration, managerConfiguration: managerConfiguration)
        let directory = ShardDirectory(retry: settings.mysqlRetry)
        store.survey = survey
        let core = GenerationCore(
            sessions: SessionFactory(store: store, queue: queue, logger: logger), settings: settings, survey: survey,
            population: SharedPopulation(population),
            scores: scores, directory: directory, metrics: metrics, logger: logger, watermark: watermark, sets: sets,
            setsWatermark: setsWatermark)
        return (core, watermark)
    }

    /// The score store over the shards the catalog lists, its connection
    /// manager's idle reaper started. Blocking (one MySQL read).
    package static func scoreStore(
        _ session: StoreSession, logger: Logger, configuration: ScoreStore.Configuration = ScoreStore.Configuration(),
        managerConfiguration: ShardConnectionManager.Configuration = ShardConnectionManager.Configuration()
    ) throws -> ScoreStore {
        let shards = try session.shards.list()
        if shards.isEmpty { logger.warning("no shard configured yet: add one with `kindred shards add redis://HOST:PORT`") }
        let manager = ShardConnectionManager(
            shards: shards.map { ShardEndpoint(id: $0.id, address: $0.address.url, isCluster: $0.address.isCluster) },
            configuration: managerConfiguration)
        manager.startIdleReaper()
        return ScoreStore(manager: manager, configuration: configuration)
    }

    /// Connects a store session at start, waiting up to `startupTimeout` for
    /// MySQL (each retry logged), and checks the schema is up to date.
    /// Blocking: call it from a dedicated thread.
    package static func connectAtStart(
        _ store: StoreConfiguration, logger: Logger, startupTimeout: Duration = .seconds(60)
    ) throws -> StoreSession {
        let session = try StoreSession.connect(store, waitingUpTo: startupTimeout, onRetry: logStartupRetry(logger))
        do {
            try session.requireUpToDate()
        } catch {
            session.close()
            throw error
        }
        return session
    }

    /// Logs each failed attempt to reach MySQL at start.
    package static func logStartupRetry(_ logger: Logger) -> (RetryEvent) -> Void {
        { event in
            logger.warning(
                "MySQL unreachable at start: retrying", metadata: ["error": "\(event.error)", "retry_in_ms": .milliseconds(event.delay)])
        }
    }
}
