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
    public static func throughputPublisher(_ context: PipelineContext, interval: Duration = .seconds(5)) -> ThreadsService {
        return periodicService(name: "throughput", interval: interval, logger: context.logger, sessions: context.sessions) { session in
            let counts = context.throughput.drain()
            guard !counts.isEmpty else { return }
            do {
                try session.queue { try context.queue.addThroughput(counts, on: $0) }
            } catch {
                context.throughput.restore(counts)
                throw error
            }
        }
    }
}
