import Foundation
import Pipeline
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
