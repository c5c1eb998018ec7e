import MemberStore
import Scoring

/// How a process that generates sets paces itself: the worker, the web
/// backend and backfill alike. What only the worker daemon sets (its
/// threads, heartbeats, reaper, sweeps, audit, job retries) is
/// `KindredWorker.WorkerSettings`. Every interval here is a trade-off
/// between promptness and load; the defaults suit a few million members.
package struct GenerationSettings: Sendable {
    package var scoring: ScoringSettings
    /// How often the snapshot picks up members changed in MySQL.
    package var refreshInterval: Duration = .seconds(1)
    /// This process publishes members' changes (the worker daemon): it
    /// keeps the set index (every set's floor and coverage) following MySQL.
    /// The web backend and backfill only rebuild members' own sets and do
    /// not need it.
    package var publishes = true
    /// How far behind its last read a refresh looks again: longer than any
    /// write transaction takes to commit after stamping `changed_at`.
    package var snapshotOverlap: Duration = .seconds(10)
    /// How often the shard list (and, in the worker, each shard's marker) is followed.
    package var watchInterval: Duration = .seconds(2)
    /// How often queue and shard gauges are refreshed.
    package var metricsInterval: Duration = .seconds(5)
    /// How long a MySQL operation retries (reconnecting) before the job is
    /// handed back and the worker pauses.
    package var mysqlRetry = RetryPolicy(giveUpAfter: .seconds(5))
    /// The longest pause of a worker (or a run) while MySQL is unavailable.
    package var mysqlPauseLimit: Duration = .seconds(30)

    package init(scoring: ScoringSettings = .default) {
        self.scoring = scoring
    }
}
