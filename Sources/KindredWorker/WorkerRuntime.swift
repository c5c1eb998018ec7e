import Foundation
import KindredCore
import WorkQueue

/// What only the worker daemon keeps beside the parts every program shares
/// (``KindredCore/GenerationCore``): its settings, the queue with its job
/// retries, its process id in the queue, which of its generation workers
/// is on a job, and its per-minute counts until they are published. The
/// web backend and the runs never make one.
package final class WorkerRuntime: Sendable {
    package let core: GenerationCore
    package let settings: WorkerSettings
    /// The queue the workers take jobs from, retrying them by `settings.jobRetry`.
    package let queue: WorkQueue
    /// `host:pid:random`: this process's prefix for worker ids.
    package let processID: String
    /// Which generation workers are on a job, since when.
    package let activity: WorkerActivity
    /// What this process did per minute, until published (the dashboard's charts).
    package let throughput = ThroughputRecorder()

    package init(core: GenerationCore, settings: WorkerSettings) {
        self.core = core
        self.settings = settings
        queue = WorkQueue(retry: settings.jobRetry)
        activity = WorkerActivity(workers: settings.workers)
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        processID = "\(host):\(getpid()):\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }
}
