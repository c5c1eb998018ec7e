import KindredSupport
import Logging
import ServiceLifecycle

/// A `Service` that runs blocking work on plain threads of its own, never on
/// Swift's cooperative pool (the work makes blocking C calls: hiredis,
/// libmariadb). On graceful shutdown (SIGTERM, SIGINT through the
/// `ServiceGroup`) or cancellation it sets the ``StopSignal`` and waits for
/// the threads to return, at most `shutdownTimeout`; threads still running
/// then are abandoned, and `run()` returns so the process can exit in
/// bounded time.
package final class ThreadsService: Service, Sendable {
    package let name: String
    package let stop = StopSignal()
    private let count: Int
    private let shutdownTimeout: Duration
    private let body: @Sendable (Int, StopSignal) -> Void
    /// A periodic service's one run (``periodicService(name:interval:logger:body:onStop:)``).
    private let tick: (@Sendable () throws -> Void)?
    private let logger: Logger
    /// Threads still running, and `run()` waiting for them (resumed once).
    private let state = Monitor((running: 0, continuation: CheckedContinuation<Void, Never>?.none))

    /// - Parameters:
    ///   - count: threads to start; `body` gets each one's index.
    ///   - body: runs until it sees `stop` set; it must check often.
    package init(
        name: String, count: Int, shutdownTimeout: Duration, logger: Logger,
        tick: (@Sendable () throws -> Void)? = nil,
        body: @escaping @Sendable (Int, StopSignal) -> Void
    ) {
        precondition(count >= 1)
        self.name = name
        self.count = count
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
        self.tick = tick
        self.body = body
    }

    /// Runs a periodic service's body once on the calling thread, outside
    /// its schedule (tests, and an operator's one-off run); errors are
    /// thrown. Nothing for other services.
    package func runOnce() throws {
        try tick?()
    }

    package func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                state.withLock { state, _ in
                    state.continuation = continuation
                    state.running = count
                }
                for index in 0..<count {
                    startThread(name: "\(name)-\(index)", stackSize: 1 << 20) { [self] in
                        body(index, stop)
                        threadFinished()
                    }
                }
            }
        } onCancelOrGracefulShutdown: { [self] in
            logger.info("stopping", metadata: ["service": "\(name)", "threads": "\(count)"])
            stop.stop()
            // Bound the wait: resume run() even if a thread is stuck in a C call.
            let deadline = ContinuousClock.now + shutdownTimeout
            startThread(name: "\(name)-watchdog") { [self] in
                let abandoned = state.withLock { state, condition in
                    while state.running > 0 {
                        if !condition.wait(&state, until: deadline) { break }
                    }
                    let left = state.running
                    if left > 0 { Self.resume(&state.continuation) }
                    return left
                }
                if abandoned > 0 {
                    logger.warning("threads did not stop in time", metadata: ["service": "\(name)", "abandoned": "\(abandoned)"])
                }
            }
        }
    }

    private func threadFinished() {
        state.withLock { state, condition in
            state.running -= 1
            if state.running == 0 {
                Self.resume(&state.continuation)
                condition.broadcast()
            }
        }
    }

    private static func resume(_ continuation: inout CheckedContinuation<Void, Never>?) {
        continuation?.resume()
        continuation = nil
    }
}

/// Runs `body` on a thread of its own every `interval` (first run at once)
/// until graceful shutdown, then `onStop` once. An error is logged and the
/// next run happens as scheduled: a periodic task never takes the process down.
package func periodicService(
    name: String, interval: Duration, logger: Logger,
    body: @escaping @Sendable () throws -> Void,
    onStop: @escaping @Sendable () throws -> Void = {}
) -> ThreadsService {
    ThreadsService(name: name, count: 1, shutdownTimeout: .seconds(5), logger: logger, tick: body) { _, stop in
        while !stop.isStopped {
            do {
                try body()
            } catch {
                logger.error("periodic task failed", metadata: ["task": "\(name)", "error": "\(error)"])
            }
            if stop.wait(interval) { break }
        }
        do {
            try onStop()
        } catch {
            logger.error("periodic task failed to stop cleanly", metadata: ["task": "\(name)", "error": "\(error)"])
        }
    }
}
