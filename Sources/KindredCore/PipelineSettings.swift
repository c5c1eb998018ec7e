import MemberStore
import Scoring
import WorkQueue

/// How the worker daemon paces itself. Every interval here is a trade-off
/// between promptness and load; the defaults suit a few million members.
public struct PipelineSettings: Sendable {
    public var scoring: ScoringSettings
    /// Generation threads (default: the number of cores).
    public var workers: Int
    /// How often each process records that its workers are alive.
    public var heartbeatInterval: Duration = .seconds(1)
    /// A worker silent this long has its jobs returned by any reaper.
    public var reapTimeout: Duration = .seconds(5)
    /// A worker on one job for longer than this (a job takes well under a
    /// second; MySQL and shard retries inside it give up within seconds) is
    /// taken for stuck: its heartbeat stops, so the reapers return its job.
    public var jobDeadline: Duration = .seconds(120)
    public var reapInterval: Duration = .seconds(2)
    /// How often the snapshot picks up members changed in MySQL.
    public var refreshInterval: Duration = .seconds(1)
    /// This process publishes members' changes (the worker daemon): it
    /// keeps the set index (every set's floor and coverage) following MySQL.
    /// The web backend and backfill only rebuild members' own sets and do
    /// not need it.
    public var publishes = true
    /// How far behind its last read a refresh looks again: longer than any
    /// write transaction takes to commit after stamping `changed_at`.
    public var snapshotOverlap: Duration = .seconds(10)
    /// How often MySQL's bookkeeping is swept for sets that are missing or
    /// stale (and at start).
    public var sweepInterval: Duration = .seconds(300)
    /// Members active within this window (or holding a shard) should have a set.
    public var activeWindow: Duration = .seconds(90 * 86_400)
    /// How often each shard's marker is checked (a shard that came back empty).
    public var watchInterval: Duration = .seconds(2)
    /// How often the set audit runs (every recorded set on its shard and
    /// the one recorded, orphans removed, a sample recomputed).
    public var auditInterval: Duration = .seconds(600)
    /// Sets the audit recomputes from the snapshot and compares, per run.
    public var auditSample = 50
    /// How often queue and shard gauges are refreshed.
    public var metricsInterval: Duration = .seconds(5)
    public var jobRetry: JobRetryPolicy = .default
    /// How long a MySQL operation retries (reconnecting) before the job is
    /// handed back and the worker pauses.
    public var mysqlRetry = RetryPolicy(giveUpAfter: .seconds(5))
    /// The longest pause of a worker while MySQL is unavailable.
    public var mysqlPauseLimit: Duration = .seconds(30)
    /// How long a graceful stop waits for jobs in flight.
    public var shutdownTimeout: Duration = .seconds(15)

    public init(scoring: ScoringSettings = .default, workers: Int) {
        precondition(workers >= 1)
        self.scoring = scoring
        self.workers = workers
    }
}
