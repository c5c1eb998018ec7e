import KindredSupport

/// When each generation worker of this process took the job it is on (nil
/// while it is between jobs), so the heartbeat can stop vouching for a
/// worker stuck on one job past ``PipelineSettings/jobDeadline``: the
/// reapers then return that job to the queue (counted as an attempt, so a
/// job that hangs every time ends in the dead letters) and another worker
/// does it. A thread cannot be killed; when the stuck one comes back, its
/// late result is harmless (jobs are idempotent) and its next fetch makes
/// it a live worker again.
public final class WorkerActivity: @unchecked Sendable {
    // @unchecked Sendable: `started` is only touched under `lock`.
    private let lock = Lock()
    private var started: [ContinuousClock.Instant?]

    public init(workers: Int) {
        started = Array(repeating: nil, count: workers)
    }

    /// Worker `index` took a job.
    public func begin(_ index: Int, at now: ContinuousClock.Instant = .now) {
        lock.withLock { if started.indices.contains(index) { started[index] = now } }
    }

    /// Worker `index` is done with its job (whatever the outcome).
    public func end(_ index: Int) {
        lock.withLock { if started.indices.contains(index) { started[index] = nil } }
    }

    /// The workers on one job for longer than `deadline`.
    public func stuck(longerThan deadline: Duration, now: ContinuousClock.Instant = .now) -> Set<Int> {
        lock.withLock {
            var stuck = Set<Int>()
            for (index, since) in started.enumerated() {
                if let since, now - since > deadline { stuck.insert(index) }
            }
            return stuck
        }
    }
}
