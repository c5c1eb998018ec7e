import Foundation
import Logging
import MemberStore
import Scoring
import ScoreStore

/// The parts every program that generates sets shares (the worker, the web
/// backend, backfill): the survey, the snapshot and its follower, the set
/// index when publishing, the score store, the shard directory's cache,
/// metrics, logs, and the factory of each thread's sessions. All of it is
/// thread-safe; per-thread resources (a ``ThreadSession``: a MySQL session
/// and a queue connection; a match finder) are made by each thread from
/// ``sessions`` and live in ``Generator`` and the thread's loop. What only
/// one program uses (the worker's queue and runtime, the web backend's
/// deletion marks) is that program's own, handed to it by its assembly.
package final class GenerationCore: Sendable {
    /// Makes each thread's sessions (MySQL, and the queue when the program
    /// was given its address): the core hands out no connection.
    package let sessions: SessionFactory
    package let settings: GenerationSettings
    package let survey: Survey
    package let population: SharedPopulation
    package let scores: ScoreStore
    package let directory: ShardDirectory
    package let metrics: KindredMetrics
    package let logger: Logger
    /// What this process knows of every stored set (floors, coverage):
    /// only a publishing process (the worker) keeps one; nil elsewhere.
    package let sets: SetIndex?
    /// Keeps ``population`` and ``sets`` following MySQL.
    package let follower: SnapshotFollower

    package init(
        sessions: SessionFactory, settings: GenerationSettings, survey: Survey, population: SharedPopulation, scores: ScoreStore,
        directory: ShardDirectory, metrics: KindredMetrics, logger: Logger, watermark: SnapshotWatermark, sets: SetIndex = SetIndex(),
        setsWatermark: ServerTime? = nil
    ) {
        self.sessions = sessions
        self.settings = settings
        self.survey = survey
        self.population = population
        self.scores = scores
        self.directory = directory
        self.metrics = metrics
        self.logger = logger
        self.sets = settings.publishes ? sets : nil
        follower = SnapshotFollower(
            population: population, sets: self.sets, watermark: watermark, setsWatermark: setsWatermark,
            overlap: settings.snapshotOverlap, logger: logger)
    }
}
