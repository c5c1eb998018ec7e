import Foundation
import Logging
import MariaDBClient
import MemberFormat
import MemberStore
import Pipeline
import Prometheus
import RedisClient
import Scoring
import ScoreStore
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

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fixtures").path

    /// - Parameter memberLimit: import only the first this many fixture lines
    ///   (tests that regenerate everyone more than once keep debug builds quick).
    init(dedicatedMySQL: Bool = false, memberLimit: Int? = nil) throws {
        mysqlServer = dedicatedMySQL ? try MariaDBServer.start() : try MariaDBServer.shared()
        database = try mysqlServer.createDatabase()
        shards = try (0..<3).map { _ in try RedisServer() }
        queueServer = try RedisServer()
        let connection = try mysqlServer.connect(database: database)
        defer { connection.close() }
        try Migrator.migrate(connection)
        let catalog = ShardCatalog(connection: connection)
        shardIDs = try shards.map { try catalog.add(address: "redis://127.0.0.1:\($0.port)").id }
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
        try WorkQueue().enqueue(members.map(\.id), priority: priority, on: redis)
    }

    /// Members with a current generation recorded in MySQL.
    func generatedCount() throws -> Int {
        let connection = try connectMySQL()
        defer { connection.close() }
        return try GenerationStore(connection: connection).counts().generated
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
        let manager = ShardConnectionManager(
            shards: zip(shardIDs, shards).map { ShardEndpoint(id: $0.0, host: "127.0.0.1", port: Int($0.1.port)) })
        return ScoreStore(manager: manager)
    }

    /// Every member's stored set (nil when missing), read through MySQL's directory.
    func storedSets() throws -> [MemberID: [Match]?] {
        let connection = try connectMySQL()
        defer { connection.close() }
        let store = scoreStore()
        defer { store.manager.close() }
        let directory = ShardDirectory(connection: try SerializedConnection(configuration: mysqlConfiguration))
        var sets: [MemberID: [Match]?] = [:]
        for member in members {
            guard let shard = try directory.shard(of: member.id) else {
                sets[member.id] = .some(nil)
                continue
            }
            sets[member.id] = try store.readSet(member.id, shard: shard)?.matches
        }
        return sets
    }

    /// Builds an in-process pipeline context over this installation.
    func context(
        workers: Int = 1, manager: ShardConnectionManager.Configuration = ShardConnectionManager.Configuration(),
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        configure: (inout PipelineSettings) -> Void = { _ in }
    ) throws
        -> (PipelineContext, SnapshotWatermark)
    {
        var settings = PipelineSettings(workers: workers)
        settings.jobRetry = JobRetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50), maxDelay: .milliseconds(200))
        configure(&settings)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return try WorkerDaemon.bootstrap(
            mysql: mysqlConfiguration, queue: queueURL, settings: settings,
            metrics: KindredMetrics.prometheus(registry: registry), logger: logger,
            managerConfiguration: manager)
    }
}
