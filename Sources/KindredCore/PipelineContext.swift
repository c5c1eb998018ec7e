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
/// thread-safe; per-thread resources (a ``ThreadSession``: a MySQL
/// session and a queue connection; a match finder) are made by each thread
/// from ``sessions`` and live in ``Generator`` and the thread's loop.
public final class PipelineContext: Sendable {
    /// Makes each thread's sessions (MySQL, queue): the context hands out
    /// no connection.
    public let sessions: SessionFactory
    public let settings: PipelineSettings
    public let survey: Survey
    public let population: SharedPopulation
    public let scores: ScoreStore
    public let directory: ShardDirectory
    public let queue: WorkQueue
    public let metrics: KindredMetrics
    public let logger: Logger
    /// What this process knows of every stored set (floors, coverage):
    /// only a publishing process (the worker) keeps one; nil elsewhere.
    public let sets: SetIndex?
    /// Keeps ``population`` and ``sets`` following MySQL.
    public let follower: SnapshotFollower

    public init(
        mysql: MariaDBConnection.Configuration, queueAddress: QueueAddress?, settings: PipelineSettings, survey: Survey,
        population: SharedPopulation, scores: ScoreStore, directory: ShardDirectory, metrics: KindredMetrics,
        logger: Logger, watermark: SnapshotWatermark, sets: SetIndex = SetIndex(), setsWatermark: ServerTime? = nil
    ) {
        sessions = SessionFactory(
            store: StoreConfiguration(mysql: mysql, retry: settings.mysqlRetry, survey: survey), queue: queueAddress, logger: logger)
        self.settings = settings
        self.survey = survey
        self.population = population
        self.scores = scores
        self.directory = directory
        queue = WorkQueue(retry: settings.jobRetry)
        self.metrics = metrics
        self.logger = logger
        self.sets = settings.publishes ? sets : nil
        follower = SnapshotFollower(
            population: population, sets: self.sets, watermark: watermark, setsWatermark: setsWatermark,
            overlap: settings.snapshotOverlap, logger: logger)
    }
}
