import Foundation
import KindredCore
import KindredSupport
import Logging
import Synchronization
import WorkQueue

extension Maintenance {
    /// Publishes the worker's per-minute counters to the queue's Redis
    /// every `interval` (kept there for two hours, for the dashboard).
    /// A batch that could not be published, or whose reply was lost, is
    /// sent again first, under its number: the queue adds it once. A batch
    /// the queue refuses (its keys hold something else: it can never be
    /// added) is dropped with an error, so it does not hold back the counts
    /// after it.
    package static func throughputPublisher(_ runtime: WorkerRuntime, interval: Duration = .seconds(5)) -> ThreadsService {
        let core = runtime.core
        let publish: @Sendable (ThreadSession) throws -> Void = { session in
            try runtime.throughput.publish { (batch: ThroughputRecorder.Batch) throws -> Void in
                do {
                    _ = try session.queue { (connection: QueueConnection) throws -> Bool in
                        try runtime.queue.addThroughput(
                            batch.counts, publisher: runtime.processID, sequence: batch.sequence, on: connection)
                    }
                } catch let error as QueueError where error.isThroughputRefusal {
                    core.logger.error(
                        "per-minute counters refused by the queue: batch dropped",
                        metadata: ["sequence": "\(batch.sequence)", "error": "\(error)"])
                }
            }
        }
        // A graceful stop publishes what the last interval recorded.
        return periodicService(
            name: "throughput", interval: interval, logger: core.logger, sessions: core.sessions, body: publish, onStop: publish)
    }
}
