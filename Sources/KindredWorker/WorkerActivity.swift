import KindredSupport
import Synchronization

/// When each generation worker of this process took the job it is on (nil
/// while it is between jobs), so the heartbeat can stop vouching for a
/// worker stuck on one job past ``WorkerSettings/jobDeadline``: the
/// reapers then return that job to the queue (counted as an attempt, so a
/// job that hangs every time ends in the dead letters) and another worker
/// does it. A thread cannot be killed; when the stuck one comes back, its
/// late result is harmless (jobs are idempotent) and its next fetch makes
/// it a live worker again.
package final class WorkerActivity: Sendable {
    private let started: Mutex<[ContinuousClock.Instant?]>

    package init(workers: Int) {
        started = Mutex(Array(repeating: nil, count: workers))
    }

    /// Worker `index` took a job.
    package func begin(_ index: Int, at now: ContinuousClock.Instant = .now) {
        started.withLock { started in if started.indices.contains(index) { started[index] = now } }
    }

    /// Worker `index` is done with its job (whatever the outcome).
    package func end(_ index: Int) {
        started.withLock { started in if started.indices.contains(index) { started[index] = nil } }
    }

    /// The workers on one job for longer than `deadline`.
    package func stuck(longerThan deadline: Duration, now: ContinuousClock.Instant = .now) -> Set<Int> {
        started.withLock { started in
            var stuck = Set<Int>()
            for (index, since) in started.enumerated() {
                if let since, now - since > deadline { stuck.insert(index) }
            }
            return stuck
        }
    }
}
