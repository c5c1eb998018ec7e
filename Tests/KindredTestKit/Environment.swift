import Foundation
import KindredCore
import KindredWorker
import Logging
import MariaDBClient
import MemberFormat
@_spi(Testing) import MemberStore
import MetricsEndpoint
import Prometheus
import RedisClient
import ScoreStore
import Scoring
import TestSupport
import WorkQueue

/// A whole Kindred installation for one test: a MariaDB database (on the
/// shared server, or on a server of the test's own when it will be
/// restarted), three Redis shards and a queue Redis, migrated, with the
/// shards registered and the fixture population imported.
final class Installation: @unchecked Sendable {
    // @unchecked Sendable: every stored property is immutable after init.
    let mysqlServer: MariaDBServer
    let database: String
    let shards: [RedisServer]
    let queueServer: RedisServer
    let survey: Survey
    /// The fixture members, as the store gives them back (normalized).
    let members: [Member]
    /// Shard ids as registered, in the order of `shards`.
    let shardIDs: [UInt32]
    /// A Redis Cluster registered as one more shard, when the test asked for one.
    let cluster: RedisCluster?
    let clusterShardID: UInt32?

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fixtures").path

    /// - Parameter memberLimit: import only the first this many fixture lines
    ///   (tests that regenerate everyone more than once keep debug builds quick).
    /// - Parameter cluster: registered as one more shard (`redis+cluster://`),
    ///   beside `standaloneShards` standalone ones.
    init(dedicatedMySQL: Bool = false, memberLimit: Int? = nil, standaloneShards: Int = 3, cluster: RedisCluster? = nil) throws {
        mysqlServer = dedicatedMySQL ? try MariaDBServer.start() : try MariaDBServer.shared()
        database = try mysqlServer.createDatabase()
        shards = try (0..<standaloneShards).map { _ in try RedisServer() }
        queueServer = try RedisServer()
        let connection = try mysqlServer.connect(database: database)
        defer { connection.close() }
        try Migrator.migrate(connection)
        let catalog = ShardCatalog(connection: connection)
        shardIDs = try shards.map { try catalog.add(address: "redis://127.0.0.1:\($0.port)").id }
        self.cluster = cluster
        clusterShardID = try cluster.map { try catalog.add(address: "redis+cluster://127.0.0.1:\($0.nodes[0].port)").id }
        var membersPath = Self.fixtures + "/members.jsonl"
        if let memberLimit {
            let lines = try String(contentsOfFile: membersPath, encoding: .utf8).split(separator: "\n").prefix(memberLimit)
            let directory = try makeTemporaryDirectory(prefix: "kindred-fixture")
            membersPath = directory.appendingPathComponent("members.jsonl").path
            try (lines.joined(separator: "\n") + "\n").write(toFile: membersPath, atomically: true, encoding: .utf8)
        }
        let summary = try Importer(connection: connection).run(
            surveyPath: Self.fixtures + "/survey.json", membersPath: membersPath,
            onReject: { _ in }, onProgress: { _ in }, onRetry: { _ in })
        precondition(summary.progress.rejected == 0)
        survey = try SurveyStore.stored(connection)!
        let (population, _) = try MemberFile.loadPopulation(
            surveyPath: Self.fixtures + "/survey.json", membersPath: membersPath, onReject: { _ in })
        members = population.memberIDs.sorted().map { population.member($0)! }
    }

    var mysqlURL: String { mysqlServer.url(database: database) }
    var mysqlConfiguration: MariaDBConnection.Configuration { mysqlServer.configuration(database: database) }
    var queueURL: RedisURL { RedisURL(host: "127.0.0.1", port: Int(queueServer.port)) }

    func connectMySQL() throws -> MariaDBConnection { try mysqlServer.connect(database: database) }

    /// The environment a `kindred` process needs to use this installation.
    var environment: [String: String] {
        ["KINDRED_MYSQL": mysqlURL, "KINDRED_QUEUE": queueURL.description]
    }

    /// Queues every member of the fixtures.
    func enqueueAll(priority: JobPriority = .interactive) throws {
        let redis = try queueServer.connect()
        try WorkQueue().enqueue(members.map(\.id), priority: priority, on: QueueConnection(redis))
    }

    /// Members with a current generation recorded in MySQL.
    func generatedCount() throws -> Int {
        let connection = try connectMySQL()
        defer { connection.close() }
        return try GenerationStore(connection: connection).counts().generated
    }

    /// ``expectedMatches(_:survey:settings:)`` on a thread of its own: it
    /// computes for up to a second at a few hundred members in a debug
    /// build, which an async test must not spend on the cooperative pool.
    static func expectedMatchesOffPool(_ members: [Member], survey: Survey, settings: ScoringSettings = .default) async throws
        -> [MemberID: [Match]]
    {
        try await onThread("kindred-expected") { try expectedMatches(members, survey: survey, settings: settings) }
    }

    /// The matches the engine computes for every member of `population`.
    static func expectedMatches(_ members: [Member], survey: Survey, settings: ScoringSettings = .default) throws
        -> [MemberID: [Match]]
    {
        let population = Population(survey: survey)
        for member in members { try population.upsert(member) }
        let finder = MatchFinder(settings: settings)
        var all: [MemberID: [Match]] = [:]
        for member in members { all[member.id] = finder.matches(forID: member.id, in: population) }
        return all
    }

    /// A score store over this installation's shards (for reading back).
    func scoreStore() -> ScoreStore {
        var endpoints = zip(shardIDs, shards).map { ShardEndpoint(id: $0.0, host: "127.0.0.1", port: Int($0.1.port)) }
        if let cluster, let clusterShardID {
            endpoints.append(ShardEndpoint(id: clusterShardID, address: RedisURL(host: "127.0.0.1", port: Int(cluster.nodes[0].port)), isCluster: true))
        }
        return ScoreStore(manager: ShardConnectionManager(shards: endpoints))
    }

    /// Every member's stored set (nil when missing), read through MySQL's directory.
    func storedSets() throws -> [MemberID: [Match]?] {
        let connection = try connectMySQL()
        defer { connection.close() }
        let store = scoreStore()
        defer { store.manager.close() }
        let directory = try SessionDirectory(configuration: mysqlConfiguration)
        var sets: [MemberID: [Match]?] = [:]
        for member in members {
            guard let shard = try directory.shard(of: member.id) else {
                sets[member.id] = .some(nil)
                continue
            }
            // `.some(nil)`: assigning a plain nil would remove the key, and a missing set would look like no member.
            sets[member.id] = .some(try store.readSet(member.id, shard: shard)?.matches)
        }
        return sets
    }

    /// The generation core over this installation, loaded as the programs'
    /// assemblies load it (``Bootstrap/load``), but publishing (the set index
    /// kept) unless `configure` says otherwise, also for `.serve`: the web
    /// harness generates its fixtures' sets through it, where `kindred serve`
    /// (``ServeAssembly``) does not publish.
    func core(
        manager: ShardConnectionManager.Configuration = ShardConnectionManager.Configuration(),
        scores: ScoreStore.Configuration = ScoreStore.Configuration(),
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), program: MetricsProgram = .worker, logs: LogRecorder? = nil,
        configure: (inout GenerationSettings) -> Void = { _ in }
    ) throws
        -> (GenerationCore, SnapshotWatermark)
    {
        var settings = GenerationSettings()
        configure(&settings)
        var logger = logs?.logger() ?? Logger(label: "test")
        logger.logLevel = .warning
        return try Bootstrap.load(
            store: StoreConfiguration(mysql: mysqlConfiguration), queue: QueueAddress(queueURL), settings: settings,
            metrics: KindredMetrics.prometheus(registry: registry, program: program), logger: logger,
            scoreConfiguration: scores, managerConfiguration: manager)
    }

    /// A worker over this installation, as `kindred worker` assembles it:
    /// the generation core (publishing) and the worker's runtime, its job
    /// retries short (``KindredWorker/WorkerSettings/testing(workers:)``).
    func worker(
        workers: Int = 1, manager: ShardConnectionManager.Configuration = ShardConnectionManager.Configuration(),
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), logs: LogRecorder? = nil,
        configure: (inout GenerationSettings) -> Void = { _ in }, configureWorker: (inout WorkerSettings) -> Void = { _ in }
    ) throws -> WorkerRuntime {
        let (core, _) = try core(manager: manager, registry: registry, program: .worker, logs: logs, configure: configure)
        var settings = WorkerSettings.testing(workers: workers)
        configureWorker(&settings)
        return WorkerRuntime(core: core, settings: settings)
    }
}

extension WorkerSettings {
    /// A worker's settings for tests: 3 attempts, retried after 50 ms to 200 ms.
    /// - Parameter auditSample: sets each audit run recomputes (a test that
    ///   checks the self-check samples every set, never depending on the draw).
    static func testing(workers: Int = 1, auditSample: Int = 50) -> WorkerSettings {
        var settings = WorkerSettings(workers: workers)
        settings.auditSample = auditSample
        settings.jobRetry = JobRetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50), maxDelay: .milliseconds(200))
        return settings
    }
}

/// Keeps what a logger was given, so a test can check what a service
/// reported (a periodic task's failures, for instance).
final class LogRecorder: @unchecked Sendable {
    // @unchecked Sendable: `entries` is only touched under `lock`.
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
        /// The metadata as given (typed: for rendering with the real log formats).
        var values: Logger.Metadata = [:]
    }

    private let lock = NSLock()
    private var entries: [Entry] = []

    /// Everything logged so far.
    var all: [Entry] { lock.withLock { entries } }

    /// A logger that records into this recorder.
    func logger(label: String = "test") -> Logger {
        Logger(label: label) { _ in Handler(recorder: self) }
    }

    /// The failures `periodicService` logged for `task`.
    func failures(of task: String) -> [String] {
        all.filter { $0.message == "periodic task failed" && $0.metadata["task"] == task }.map { $0.metadata["error"] ?? "" }
    }

    fileprivate func append(_ entry: Entry) { lock.withLock { entries.append(entry) } }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            recorder.append(Entry(level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" }, values: merged))
        }
    }
}

extension PrometheusCollectorRegistry {
    /// The value of the sample `name{label="value"}` in the text exposition;
    /// nil when there is none.
    func sample(_ name: String, _ label: String, _ value: String) -> Double? {
        var text: [UInt8] = []
        emit(into: &text)
        let prefix = "\(name){\(label)=\"\(value)\"} "
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") where line.hasPrefix(prefix) {
            return Double(line.dropFirst(prefix.count))
        }
        return nil
    }

    /// The value of the unlabelled sample `name`; nil when there is none.
    func sample(_ name: String) -> Double? {
        var text: [UInt8] = []
        emit(into: &text)
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }
}

/// A Redis connection that test threads use in turn (a `RedisConnection` is
/// for one thread at a time), connecting again after its server restarted.
final class SharedRedis: @unchecked Sendable {
    // @unchecked Sendable: `connection` is only used under `lock`.
    private let lock = NSLock()
    private let connection: RedisConnection

    init(_ server: RedisServer) throws { connection = try server.connect() }

    func send(_ command: RedisCommand) throws -> RedisValue {
        try lock.withLock {
            if connection.isBroken { try connection.reconnect() }
            return try connection.send(command)
        }
    }

    func pipeline(_ commands: [RedisCommand]) throws -> [Result<RedisValue, RedisError>] {
        try lock.withLock {
            if connection.isBroken { try connection.reconnect() }
            return connection.pipeline(commands)
        }
    }
}

/// The last value a test step set, read by another thread.
final class Latest<Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `stored` is only touched under `lock`.
    private let lock = NSLock()
    private var stored: Value?

    var value: Value? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// A shard directory with a store session of its own, for a test that uses
/// it from one thread at a time (the directory holds no connection: each
/// caller passes its own session).
final class SessionDirectory: @unchecked Sendable {
    // @unchecked Sendable: a test hands it to one thread, which alone uses it.
    let directory = ShardDirectory()
    let session: StoreSession

    init(_ connection: MariaDBConnection) {
        session = StoreSession(connection: connection)
    }

    init(configuration: MariaDBConnection.Configuration) throws {
        session = try StoreSession.connect(StoreConfiguration(mysql: configuration))
    }

    func shard(of member: MemberID) throws -> UInt32? { try directory.shard(of: member, in: session) }
    func assign(_ member: MemberID) throws -> UInt32 { try directory.assign(member, in: session) }
    func release(_ member: MemberID) throws { try directory.release(member, in: session) }
}
