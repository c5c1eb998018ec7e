import CoreMetrics
import Foundation
import KindredCore
import KindredSupport
import Logging
import MemberFormat
import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Synchronization
import WorkQueue

/// One I/O thread's view of the process: the generation core, the web
/// backend's queue (deletion marks, rebuild requests) and the thread's own ``ThreadSession`` (`.web` queue profile: short timeouts,
/// fail fast for a second after a failure), made on the thread by the
/// executor that runs it and closed with it.
final class IOThread {
    let core: GenerationCore
    let queue: WorkQueue
    let session: ThreadSession

    init(core: GenerationCore, queue: WorkQueue, retry: RetryPolicy) {
        self.core = core
        self.queue = queue
        session = core.sessions.thread(.web, retry: retry)
    }

    deinit { session.close() }

    /// One MySQL visit on this thread's session.
    func database<T>(_ body: (StoreSession) throws -> T) throws -> T {
        try session.database(body)
    }

    /// Runs `body` on this thread's queue connection. After a failure the
    /// queue is not tried again for a second, so requests do not each wait
    /// for a connect timeout while it is down.
    func queueCall<T>(_ body: (QueueConnection) throws -> T) throws -> T {
        try session.queue(body)
    }

    /// Queues an interactive rebuild of `member`; false when the queue is
    /// unreachable (logged; the repair sweep catches up).
    @discardableResult
    func enqueue(_ member: MemberID) -> Bool {
        do {
            _ = try queueCall { try queue.enqueue([member], priority: .interactive, on: $0) }
            return true
        } catch {
            core.logger.warning("could not queue a rebuild", metadata: ["member": "\(member)", "error": "\(error)"])
            return false
        }
    }
}
