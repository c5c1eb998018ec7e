import WorkQueue

/// How the worker daemon runs beside the generation core's settings
/// (`KindredCore.GenerationSettings`): its threads, heartbeats and reaper,
/// sweeps and audit, job retries and graceful stop. No other program reads
/// them.
package struct WorkerSettings: Sendable {
    /// Generation threads (default: the number of cores).
    package var workers: Int
    /// How often each process records that its workers are alive.
    package var heartbeatInterval: Duration = .seconds(1)
    /// A worker silent this long has its jobs returned by any reaper.
    package var reapTimeout: Duration = .seconds(5)
    /// A worker on one job for longer than this (a job takes well under a
    /// second; MySQL and shard retries inside it give up within seconds) is
    /// taken for stuck: its heartbeat stops, so the reapers return its job.
    package var jobDeadline: Duration = .seconds(120)
    package var reapInterval: Duration = .seconds(2)
    /// How often MySQL's bookkeeping is swept for sets that are missing or
    /// stale (and at start).
    package var sweepInterval: Duration = .seconds(300)
    /// Members active within this window (or holding a shard) should have a set.
    package var activeWindow: Duration = .seconds(90 * 86_400)
    /// How often the set audit runs (every recorded set on its shard and
    /// the one recorded, orphans removed, a sample recomputed).
    package var auditInterval: Duration = .seconds(600)
    /// Sets the audit recomputes from the snapshot and compares, per run.
    package var auditSample = 50
    /// How a failed job is retried (and a postponed one delayed).
    package var jobRetry: JobRetryPolicy = .default
    /// How long a graceful stop waits for jobs in flight.
    package var shutdownTimeout: Duration = .seconds(15)

    package init(workers: Int) {
        precondition(workers >= 1)
        self.workers = workers
    }
}
