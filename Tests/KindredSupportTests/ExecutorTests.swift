import Foundation
import KindredSupport
import TestSupport
import Testing

@Suite("Blocking executor", .timeLimit(.minutes(1)))
struct BlockingExecutorTests {
    @Test("work runs on the executor's threads with their own context, never on the caller's")
    func ownThreadsAndContexts() async throws {
        final class Context: @unchecked Sendable {
            let index: Int
            let thread = Thread.current
            var uses = 0
            init(_ index: Int) { self.index = index }
        }
        let executor = BlockingExecutor(name: "test", threads: 3) { Context($0) }
        defer { executor.shutdown() }
        let results = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for _ in 0..<60 {
                group.addTask {
                    try await executor.run { context in
                        context.uses += 1
                        Thread.sleep(forTimeInterval: 0.001)  // a blocking call
                        return (context.index, context.thread === Thread.current)
                    }
                }
            }
            var all: [(Int, Bool)] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 60)
        #expect(results.allSatisfy { $0.1 }, "a context is only used on the thread that made it")
        #expect(Set(results.map(\.0)).isSubset(of: [0, 1, 2]))
    }

    @Test("errors reach the caller; after shutdown new work is refused")
    func errorsAndShutdown() async throws {
        struct Boom: Error {}
        let executor = BlockingExecutor(name: "test", threads: 1) { _ in () }
        await #expect(throws: Boom.self) { try await executor.run { _ in throw Boom() } }
        #expect(try await executor.run { _ in 42 } == 42)
        executor.shutdown()
        await #expect(throws: BlockingExecutorError.self) { try await executor.run { _ in 1 } }
    }
}

@Suite("Batching executor", .timeLimit(.minutes(1)))
struct BatchingExecutorTests {
    @Test("items that arrive while a batch is being processed share the next batches; each caller gets its own output")
    func batchesWhatArrivesMeanwhile() async throws {
        let releaseFirst = Gate()
        final class Context: @unchecked Sendable {
            let thread = Thread.current
        }
        let seen = Locked<[[Int]]>([])
        let executor = BatchingExecutor<Context, Int, String>(
            name: "test", threads: 1, maxBatch: 8, makeContext: { _ in Context() },
            process: { context, items in
                precondition(context.thread === Thread.current, "a context is only used on the thread that made it")
                seen.withValue { $0.append(items) }
                if items == [0] { releaseFirst.wait() }
                return items.map { "item \($0)" }
            })
        defer { executor.shutdown() }
        async let first = executor.submit(0)
        // The only thread takes item 0 and holds it until released.
        try await until { executor.statistics.batches == 1 }
        let outputs = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for item in 1...12 {
                group.addTask { (item, await executor.submit(item)) }
            }
            // All 12 wait behind item 0; then it is let go.
            try await until { executor.waiting == 12 }
            releaseFirst.open()
            var all: [Int: String] = [:]
            for try await (item, output) in group { all[item] = output }
            return all
        }
        #expect(await first == "item 0")
        #expect(outputs == Dictionary(uniqueKeysWithValues: (1...12).map { ($0, "item \($0)") }))
        let batches = seen.withValue { $0 }
        // Item 0 alone, then the 12 in batches of at most 8: two.
        #expect(batches.count == 3, "\(batches)")
        #expect(batches.dropFirst().map(\.count).sorted() == [4, 8], "\(batches)")
        #expect(Set(batches.dropFirst().flatMap { $0 }) == Set(1...12))
        #expect(executor.statistics.batches == 3 && executor.statistics.items == 13)
    }

    @Test("shutdown lets what is pending be processed; a submission after it gets nil")
    func shutdown() async throws {
        let releaseFirst = Gate()
        let executor = BatchingExecutor<Void, Int, Int>(
            name: "test", threads: 1, maxBatch: 4, makeContext: { _ in () },
            process: { _, items in
                if items == [0] { releaseFirst.wait() }
                return items.map { $0 * 2 }
            })
        async let first = executor.submit(0)
        try await until { executor.statistics.batches == 1 }
        async let second = executor.submit(21)
        try await until { executor.waiting == 1 }
        let stopper = BackgroundThread("stopper") { executor.shutdown() }
        try await until { executor.isStopped }
        #expect(await executor.submit(1) == nil)
        releaseFirst.open()
        #expect(await first == 0)
        #expect(await second == 42)
        try stopper.result()
    }

    /// Waits (bounded, yielding) until `condition` holds.
    private func until(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            await Task.yield()
        }
    }
}

/// A one-shot gate a thread or task can wait on (bounded: fails the wait after 30 s).
final class Gate: @unchecked Sendable {
    // @unchecked Sendable: guarded by `condition`.
    private let condition = NSCondition()
    private var isOpen = false

    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }

    func wait() {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: 30)
        while !isOpen {
            precondition(condition.wait(until: deadline) || isOpen, "a gate was not opened within 30 s")
        }
    }
}

/// A value behind a lock.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked Sendable: guarded by `lock`.
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withValue<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
