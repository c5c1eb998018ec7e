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
            try publishThroughput(runtime.throughput, publisher: runtime.processID, queue: runtime.queue, logger: core.logger) {
                try session.queue($0)
            }
        }
        // A graceful stop publishes what the last interval recorded.
        return periodicService(
            name: "throughput", interval: interval, logger: core.logger, sessions: core.sessions, body: publish, onStop: publish)
    }

    /// One round of the throughput service: `recorder`'s batches, through
    /// `queueCall` (the service's queue connection). A batch the queue
    /// refuses for good is dropped and logged as an error; any other
    /// failure leaves it for the next round.
    package static func publishThroughput(
        _ recorder: ThroughputRecorder, publisher: String, queue: WorkQueue, logger: Logger,
        queueCall: ((QueueConnection) throws -> Bool) throws -> Bool
    ) throws {
        try recorder.publish { (batch: ThroughputRecorder.Batch) throws -> Void in
            do {
                _ = try queueCall { connection in
                    try queue.addThroughput(batch.counts, publisher: publisher, sequence: batch.sequence, on: connection)
                }
            } catch let error as QueueError where error.isThroughputRefusal {
                logger.error(
                    "per-minute counters refused by the queue: batch dropped",
                    metadata: ["sequence": "\(batch.sequence)", "error": "\(error)"])
            }
        }
    }
}
