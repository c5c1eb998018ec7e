import Foundation

/// A fixed set of plain threads that run blocking work for async callers, so
/// that hiredis and libmariadb calls never occupy Swift's cooperative pool.
/// Each thread owns a `Context` made by `makeContext` on that thread (its own
/// database connection, say): C handles are never shared between threads.
///
/// Work is taken in submission order. A caller waiting on ``run(_:)`` is
/// suspended, not blocking a thread. Callers bound their own work (the C
/// clients have connect and read timeouts), so nothing here waits forever.
public final class BlockingExecutor<Context>: @unchecked Sendable {
    // @unchecked Sendable: `queue` and `stopped` are guarded by `condition`;
    // each `Context` is created, used and dropped on its own thread only.
    private let condition = NSCondition()
    private var queue: [(Context) -> Void] = []
    private var stopped = false
    private var running = 0
    public let threadCount: Int

    /// Starts `threads` threads named `name-N`; each makes its context first.
    public init(name: String, threads: Int, makeContext: @escaping @Sendable (Int) -> Context) {
        precondition(threads >= 1)
        threadCount = threads
        running = threads
        for index in 0..<threads {
            let thread = Thread { [self] in
                let context = makeContext(index)
                loop(context)
            }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    private func loop(_ context: Context) {
        while true {
            condition.lock()
            while queue.isEmpty && !stopped { condition.wait() }
            if queue.isEmpty && stopped {
                running -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let work = queue.removeFirst()
            condition.unlock()
            work(context)
        }
    }

    /// Runs `body` on one of the threads with that thread's context and
    /// returns its result. Throws ``BlockingExecutorError/shutDown`` after
    /// ``shutdown()``.
    public func run<T: Sendable>(_ body: @escaping @Sendable (Context) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            condition.lock()
            defer { condition.unlock() }
            guard !stopped else {
                continuation.resume(throwing: BlockingExecutorError.shutDown)
                return
            }
            queue.append { context in
                continuation.resume(with: Result { try body(context) })
            }
            condition.signal()
        }
    }

    /// Jobs submitted and not yet started.
    public var backlog: Int {
        condition.lock()
        defer { condition.unlock() }
        return queue.count
    }

    /// Lets queued work finish, then stops the threads; waits at most `timeout`.
    public func shutdown(timeout: Duration = .seconds(10)) {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        stopped = true
        condition.broadcast()
        while running > 0 {
            if !condition.wait(until: deadline) { break }
        }
        condition.unlock()
    }
}

public enum BlockingExecutorError: Error, Sendable {
    case shutDown
}
