/// A fixed set of plain threads that run blocking work for async callers, so
/// that hiredis and libmariadb calls never occupy Swift's cooperative pool.
/// Each thread owns a `Context` made by `makeContext` on that thread (its own
/// database connection, say): C handles are never shared between threads.
///
/// Work is taken in submission order, one job at a time per thread (a
/// ``BatchingExecutor`` with batches of one). A caller waiting on ``run(_:)``
/// is suspended, not blocking a thread. Callers bound their own work (the C
/// clients have connect and read timeouts), so nothing here waits forever.
package final class BlockingExecutor<Context>: Sendable {
    /// One piece of work: runs the caller's body and resumes the caller.
    struct Work: Sendable {
        let run: @Sendable (Context) -> Void
    }

    private let threads: BatchingExecutor<Context, Work, Void>
    package let threadCount: Int

    /// Starts `threads` threads named `name-N`; each makes its context first.
    package init(name: String, threads: Int, makeContext: @escaping @Sendable (Int) -> Context) {
        threadCount = threads
        self.threads = BatchingExecutor(
            name: name, threads: threads, maxBatch: 1, makeContext: makeContext,
            process: { context, jobs in jobs.map { $0.run(context) } })
    }

    /// Runs `body` on one of the threads with that thread's context and
    /// returns its result. Throws ``BlockingExecutorError/shutDown`` after
    /// ``shutdown(timeout:)``.
    package func run<T: Sendable>(_ body: @escaping @Sendable (Context) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let work = Work { context in continuation.resume(with: Result { try body(context) }) }
            if !threads.post(work) {
                continuation.resume(throwing: BlockingExecutorError.shutDown)
            }
        }
    }

    /// Jobs submitted and not yet started.
    package var backlog: Int { threads.waiting }

    /// Lets queued work finish, then stops the threads; waits at most `timeout`.
    package func shutdown(timeout: Duration = .seconds(10)) {
        threads.shutdown(timeout: timeout)
    }
}

package enum BlockingExecutorError: Error, Sendable {
    case shutDown
}
