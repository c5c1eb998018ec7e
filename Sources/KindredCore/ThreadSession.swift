import KindredSupport
import Logging
import MemberStore
import RedisClient
import WorkQueue

/// How a thread's queue connection behaves: its timeouts and what a failure does.
package enum QueueProfile: Sendable, Hashable {
    /// Background tasks and generation workers: connect 2 s, read 10 s
    /// (long enough for `waitForWork`). ``ThreadSession/queue(_:)`` replaces
    /// a connection found broken once and runs the body again.
    case task
    /// Request threads: connect 300 ms, read 500 ms, a cluster failover
    /// waited out for at most 1 s. After a failure the queue is not tried
    /// again for a second, so requests do not each wait for a timeout.
    case web
}

/// What one thread owns to talk to MySQL and the queue: its
/// ``MemberStore/StoreSession`` and, where it needs one, a queue connection,
/// both opened on first use.
///
/// Made by the executor (or service) that runs the thread, on that thread,
/// from the process's ``SessionFactory``, and closed when the thread's loop
/// ends. Not `Sendable`: never handed to another thread, so no MySQL or
/// queue connection is ever used by two threads.
package final class ThreadSession {
    /// The thread's member store session.
    package let store: StoreSession
    private let queueAddress: QueueAddress?
    private let profile: QueueProfile
    private let logger: Logger
    private var redis: QueueConnection?
    /// When the queue was last found unreachable (`.web`: to fail fast for a while).
    private var queueDownSince: ContinuousClock.Instant?

    init(store: StoreSession, queue: QueueAddress?, profile: QueueProfile, logger: Logger) {
        self.store = store
        queueAddress = queue
        self.profile = profile
        self.logger = logger
    }

    deinit { redis?.close() }

    /// One MySQL visit on this thread's session (see
    /// ``MemberStore/StoreSession/withRetry(policy:onRetry:_:)``).
    package func database<T>(_ body: (StoreSession) throws -> T) throws -> T {
        try store.withRetry(body)
    }

    /// Runs `body` on this thread's queue connection, as the profile says:
    ///
    /// - `.task`: a server that restarted (or a path that broke) while the
    ///   thread was idle leaves the kept socket dead, and a dead socket fails
    ///   on its first use. So when `body` fails and the kept connection is
    ///   broken, whatever `body` threw, the connection is replaced and `body`
    ///   runs once more on the new one; a new connection that breaks too is
    ///   dropped and the error thrown. `body` may therefore run twice.
    /// - `.web`: any failure closes the connection, and for a second after
    ///   it calls fail at once.
    package func queue<T>(_ body: (QueueConnection) throws -> T) throws -> T {
        switch profile {
        case .task: return try taskQueue(body)
        case .web: return try webQueue(body)
        }
    }

    /// The kept queue connection, or a new one (`fresh`): the worker loop
    /// hands back what an earlier connection left held on a fresh one.
    package func openQueue() throws -> (connection: QueueConnection, fresh: Bool) {
        if let redis { return (redis, false) }
        let made = try connectQueue()
        redis = made
        return (made, true)
    }

    /// Whether a queue connection is kept (it may be broken).
    package var hasQueue: Bool { redis != nil }

    /// Drops the queue connection (broken, or its state unknown); the next
    /// use connects again.
    package func dropQueue() {
        redis?.close()
        redis = nil
    }

    /// Closes both connections (the thread's loop ended).
    package func close() {
        dropQueue()
        store.close()
    }

    private func connectQueue() throws -> QueueConnection {
        guard let queueAddress else {
            throw QueueError.unexpectedReply("this program has no queue configured (KINDRED_QUEUE)")
        }
        switch profile {
        case .task:
            return try QueueConnection(address: queueAddress, connectTimeout: .seconds(2), readTimeout: .seconds(10))
        case .web:
            // On a cluster, a request waits out at most a second of a failover of the queue's master.
            return try QueueConnection(
                address: queueAddress, connectTimeout: .milliseconds(300), readTimeout: .milliseconds(500),
                routing: ClusterRouting.Policy(retryBudget: .seconds(1)))
        }
    }

    private func taskQueue<T>(_ body: (QueueConnection) throws -> T) throws -> T {
        if let kept = redis {
            do {
                return try body(kept)
            } catch where kept.isBroken {
                dropQueue()
                logger.debug("queue connection broken since the last use: retrying on a new one", metadata: ["error": "\(error)"])
            }
        }
        let connection = try connectQueue()
        redis = connection
        do {
            return try body(connection)
        } catch where connection.isBroken {
            dropQueue()
            throw error
        }
    }

    private func webQueue<T>(_ body: (QueueConnection) throws -> T) throws -> T {
        if let since = queueDownSince, ContinuousClock.now - since < .seconds(1) {
            throw QueueError.unexpectedReply("queue unreachable (retrying shortly)")
        }
        do {
            let result = try body(try openQueue().connection)
            queueDownSince = nil
            return result
        } catch {
            dropQueue()
            queueDownSince = ContinuousClock.now
            throw error
        }
    }
}

/// Makes each thread's ``ThreadSession``: the process's MySQL configuration,
/// retry budget and survey, and its queue's address (nil: the program has
/// no queue). Sendable: shared by every executor of the process; the
/// sessions it makes are not.
package struct SessionFactory: Sendable {
    package var store: StoreConfiguration
    package var queue: QueueAddress?
    package var logger: Logger

    package init(store: StoreConfiguration, queue: QueueAddress?, logger: Logger) {
        self.store = store
        self.queue = queue
        self.logger = logger
    }

    /// A thread's session (connecting on first use). Call it on the thread
    /// that will use the session.
    package func thread(_ profile: QueueProfile = .task, retry: RetryPolicy? = nil) -> ThreadSession {
        ThreadSession(store: storeSession(retry: retry), queue: queue, profile: profile, logger: logger)
    }

    /// A thread's member store session alone (a thread that never uses the queue).
    package func storeSession(retry: RetryPolicy? = nil) -> StoreSession {
        var configuration = store
        if let retry { configuration.retry = retry }
        return StoreSession(configuration)
    }
}

/// ``periodicService(name:interval:logger:body:onStop:)`` whose thread owns
/// a ``ThreadSession``: made on the service's thread when it starts, kept
/// from one run to the next (`body` and `onStop` get it), closed when the
/// thread ends. ``ThreadsService/runOnce()`` runs `body` on the calling
/// thread with a session of its own, closed after the run.
package func periodicService(
    name: String, interval: Duration, logger: Logger, sessions: SessionFactory, profile: QueueProfile = .task,
    body: @escaping @Sendable (ThreadSession) throws -> Void,
    onStop: @escaping @Sendable (ThreadSession) throws -> Void = { _ in }
) -> ThreadsService {
    let tick: @Sendable () throws -> Void = {
        let session = sessions.thread(profile)
        defer { session.close() }
        try body(session)
    }
    return ThreadsService(name: name, count: 1, shutdownTimeout: .seconds(5), logger: logger, tick: tick) { _, stop in
        let session = sessions.thread(profile)
        defer { session.close() }
        while !stop.isStopped {
            do {
                try body(session)
            } catch {
                logger.error("periodic task failed", metadata: ["task": "\(name)", "error": "\(error)"])
            }
            if stop.wait(interval) { break }
        }
        do {
            try onStop(session)
        } catch {
            logger.error("periodic task failed to stop cleanly", metadata: ["task": "\(name)", "error": "\(error)"])
        }
    }
}
