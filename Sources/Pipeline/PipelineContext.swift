import Foundation
import Logging
import MariaDBClient
import MemberStore
import RedisClient
import Scoring
import ScoreStore
import WorkQueue

/// Everything the threads of one worker (or web) process share: the
/// snapshot, the score store and its connection manager, the shard
/// directory, the queue's address, metrics and logs. All of it is
/// thread-safe; per-thread resources (a MySQL connection, a queue
/// connection, a match finder) live in ``Generator`` and the worker loop.
public final class PipelineContext: Sendable {
    public let mysql: MariaDBConnection.Configuration
    public let queueAddress: QueueAddress
    public let settings: PipelineSettings
    public let survey: Survey
    public let population: SharedPopulation
    public let scores: ScoreStore
    public let directory: ShardDirectory
    public let queue: WorkQueue
    public let metrics: KindredMetrics
    public let logger: Logger
    /// What this process knows of every stored set (floors, coverage).
    public let sets: SetIndex
    /// Keeps ``population`` and ``sets`` following MySQL.
    public let follower: SnapshotFollower
    /// `host:pid:random`: this process's prefix for worker ids.
    public let processID: String
    /// Which generation workers are on a job, since when.
    public let activity: WorkerActivity
    /// What this process did per minute, until published (the dashboard's charts).
    public let throughput = ThroughputRecorder()

    public init(
        mysql: MariaDBConnection.Configuration, queueAddress: QueueAddress, settings: PipelineSettings, survey: Survey,
        population: SharedPopulation, scores: ScoreStore, directory: ShardDirectory, metrics: KindredMetrics,
        logger: Logger, watermark: SnapshotWatermark, sets: SetIndex = SetIndex(), setsWatermark: ServerTime? = nil
    ) {
        self.mysql = mysql
        self.queueAddress = queueAddress
        self.settings = settings
        self.survey = survey
        self.population = population
        self.scores = scores
        self.directory = directory
        queue = WorkQueue(retry: settings.jobRetry)
        self.metrics = metrics
        self.logger = logger
        self.sets = sets
        follower = SnapshotFollower(
            population: population, sets: settings.publishes ? sets : nil, watermark: watermark, setsWatermark: setsWatermark,
            overlap: settings.snapshotOverlap, logger: logger)
        activity = WorkerActivity(workers: settings.workers)
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        processID = "\(host):\(getpid()):\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }

    /// A new connection to the queue Redis (blocking; read timeout long
    /// enough for `waitForWork`).
    public func connectQueue() throws(RedisError) -> QueueConnection {
        try QueueConnection(address: queueAddress, connectTimeout: .seconds(2), readTimeout: .seconds(10))
    }

    /// A new MySQL connection.
    public func connectMySQL() throws -> MariaDBConnection {
        try MariaDBConnection(configuration: mysql)
    }
}
