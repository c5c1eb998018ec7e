import Foundation

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
public final class BatchingExecutor<Context, Item: Sendable, Output: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `pending`, `stopped`, `running` and the counts are guarded by
    // `condition`; each `Context` is created, used and dropped on its thread.
    private let condition = NSCondition()
    /// Items waiting, each with the caller to resume (nil: posted, nobody waits).
    private var pending: [(item: Item, continuation: CheckedContinuation<Output?, Never>?)] = []
    private var stopped = false
    private var running: Int
    /// The most items one `process` call gets.
    public let maxBatch: Int
    private let process: @Sendable (Context, [Item]) -> [Output]
    private var batches = 0
    private var items = 0

    /// Starts `threads` threads named `name-N`; each makes its context first.
    /// `process` must return exactly one output per item, in order.
    public init(
        name: String, threads: Int, maxBatch: Int, makeContext: @escaping @Sendable (Int) -> Context,
        process: @escaping @Sendable (Context, [Item]) -> [Output]
    ) {
        precondition(threads >= 1 && maxBatch >= 1)
        self.maxBatch = maxBatch
        self.process = process
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
            while pending.isEmpty && !stopped { condition.wait() }
            if pending.isEmpty && stopped {
                running -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let take = min(pending.count, maxBatch)
            let batch = Array(pending.prefix(take))
            pending.removeFirst(take)
            batches += 1
            items += take
            // More left: another thread can start on them meanwhile.
            if !pending.isEmpty { condition.signal() }
            condition.unlock()
            let outputs = process(context, batch.map(\.item))
            precondition(outputs.count == batch.count, "process must return one output per item")
            for (entry, output) in zip(batch, outputs) { entry.continuation?.resume(returning: output) }
        }
    }

    /// Hands `item` to the next batch and returns its output; nil after
    /// ``shutdown(timeout:)``.
    public func submit(_ item: Item) async -> Output? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Output?, Never>) in
            condition.lock()
            defer { condition.unlock() }
            guard !stopped else {
                continuation.resume(returning: nil)
                return
            }
            pending.append((item, continuation))
            condition.signal()
        }
    }

    /// Hands `item` to the next batch without waiting for its output (the
    /// item reports its own outcome); false after ``shutdown(timeout:)``.
    public func post(_ item: Item) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return false }
        pending.append((item, nil))
        condition.signal()
        return true
    }

    /// Items submitted and not yet taken into a batch.
    public var waiting: Int {
        condition.lock()
        defer { condition.unlock() }
        return pending.count
    }

    /// True once ``shutdown(timeout:)`` was called.
    public var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    /// Batches taken and items in them since the start.
    public var statistics: (batches: Int, items: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (batches, items)
    }

    /// Lets pending items be processed, then stops the threads; waits at most `timeout`.
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
