import Foundation
import KindredCore
import KindredSupport
import Logging
import Synchronization
import WorkQueue

extension Maintenance {
    /// Publishes the worker's per-minute counters to the queue's Redis
    /// every `interval` (kept there for two hours, for the dashboard).
    /// Counts that could not be published are kept for the next run.
    package static func throughputPublisher(_ runtime: WorkerRuntime, interval: Duration = .seconds(5)) -> ThreadsService {
        let core = runtime.core
        return periodicService(name: "throughput", interval: interval, logger: core.logger, sessions: core.sessions) { session in
            let counts = runtime.throughput.drain()
            guard !counts.isEmpty else { return }
            do {
                try session.queue { try runtime.queue.addThroughput(counts, on: $0) }
            } catch {
                runtime.throughput.restore(counts)
                throw error
            }
        }
    }
}
