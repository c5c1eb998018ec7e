/// Plain threads that handle submitted items in batches: a thread waits for
/// work, takes everything pending (up to ``maxBatch``) and hands it to
/// `process` in one call. Under load many callers share one wake-up and one
/// round trip per dependency; a lone caller is a batch of one and waits no
/// longer than it would on a ``BlockingExecutor``.
///
/// Like ``BlockingExecutor``, each thread owns a `Context` made on that
/// thread (its connections), blocking calls never run on Swift's
/// cooperative pool, and `process` bounds its own work (the C clients have
/// timeouts).
package final class BatchingExecutor<Context, Item: Sendable, Output: Sendable>: Sendable {
    private struct State {
        /// Items waiting, each with the caller to resume (nil: posted, nobody waits).
        var pending: [(item: Item, continuation: CheckedContinuation<Output?, Never>?)] = []
        var stopped = false
        var running: Int
        var batches = 0
        var items = 0
    }

    // Each `Context` is created, used and dropped on its own thread: it is never stored here.
    private let state: Monitor<State>
    /// The most items one `process` call gets.
    package let maxBatch: Int
    private let process: @Sendable (Context, [Item]) -> [Output]

    /// Starts `threads` threads named `name-N`; each makes its context first.
    /// `process` must return exactly one output per item, in order.
    package init(
        name: String, threads: Int, maxBatch: Int, makeContext: @escaping @Sendable (Int) -> Context,
        process: @escaping @Sendable (Context, [Item]) -> [Output]
    ) {
        precondition(threads >= 1 && maxBatch >= 1)
        self.maxBatch = maxBatch
        self.process = process
        state = Monitor(State(running: threads))
        for index in 0..<threads {
            startThread(name: "\(name)-\(index)") { [self] in
                do {
                    let context = makeContext(index)
                    loop(context)
                }
                // The context (its connections) is gone before the thread
                // counts as stopped: shutdown returns after they closed.
                state.withLock { state, condition in
                    state.running -= 1
                    condition.broadcast()
                }
            }
        }
    }

    private func loop(_ context: Context) {
        while true {
            let batch: [(item: Item, continuation: CheckedContinuation<Output?, Never>?)]? = state.withLock {
                state, condition in
                while state.pending.isEmpty && !state.stopped { condition.wait(&state) }
                if state.pending.isEmpty && state.stopped { return nil }
                let take = min(state.pending.count, maxBatch)
                let batch = Array(state.pending.prefix(take))
                state.pending.removeFirst(take)
                state.batches += 1
                state.items += take
                // More left: another thread can start on them meanwhile.
                if !state.pending.isEmpty { condition.signal() }
                return batch
            }
            guard let batch else { return }
            let outputs = process(context, batch.map(\.item))
            precondition(outputs.count == batch.count, "process must return one output per item")
            for (entry, output) in zip(batch, outputs) { entry.continuation?.resume(returning: output) }
        }
    }

    /// Hands `item` to the next batch and returns its output; nil after
    /// ``shutdown(timeout:)``.
    package func submit(_ item: Item) async -> Output? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Output?, Never>) in
            let accepted = state.withLock { state, condition in
                guard !state.stopped else { return false }
                state.pending.append((item, continuation))
                condition.signal()
                return true
            }
            if !accepted { continuation.resume(returning: nil) }
        }
    }

    /// Hands `item` to the next batch without waiting for its output (the
    /// item reports its own outcome); false after ``shutdown(timeout:)``.
    package func post(_ item: Item) -> Bool {
        state.withLock { state, condition in
            guard !state.stopped else { return false }
            state.pending.append((item, nil))
            condition.signal()
            return true
        }
    }

    /// Items submitted and not yet taken into a batch.
    package var waiting: Int {
        state.withLock { state, _ in state.pending.count }
    }

    /// True once ``shutdown(timeout:)`` was called.
    package var isStopped: Bool {
        state.withLock { state, _ in state.stopped }
    }

    /// Batches taken and items in them since the start.
    package var statistics: (batches: Int, items: Int) {
        state.withLock { state, _ in (state.batches, state.items) }
    }

    /// Lets pending items be processed, then stops the threads; waits at most
    /// `timeout` (on the monotonic clock).
    package func shutdown(timeout: Duration = .seconds(10)) {
        let deadline = ContinuousClock.now + timeout
        state.withLock { state, condition in
            state.stopped = true
            condition.broadcast()
            while state.running > 0 {
                if !condition.wait(&state, until: deadline) { break }
            }
        }
    }
}
