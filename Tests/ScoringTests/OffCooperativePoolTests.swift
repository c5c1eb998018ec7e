import Dispatch
import Foundation
import Synchronization
import Testing
import TestSupport

/// The test support's `.offCooperativePool` trait: a suite's synchronous
/// tests run on the blocking executor's threads, not on the cooperative
/// pool (whose two threads they would otherwise hold).
@Suite("Suites off the cooperative pool", .offCooperativePool)
struct OffCooperativePoolTests {
    @Test("a synchronous test runs on one of the executor's threads")
    func synchronousTest() {
        #expect(BlockingTestExecutor.isCurrentThreadOwn)
    }

    @Test("each case of a parameterized test does too", arguments: 0..<4)
    func parameterized(_ index: Int) {
        #expect(BlockingTestExecutor.isCurrentThreadOwn, "case \(index)")
    }
}

@Suite("Blocking test executor")
struct BlockingTestExecutorTests {
    @Test("a job never waits behind a blocked one: two tasks that each block until the other ran both finish")
    func noQueueing() async throws {
        let executor = BlockingTestExecutor(suites: 1)
        let first = DispatchSemaphore(value: 0)
        let second = DispatchSemaphore(value: 0)
        // Each blocks its thread until the other signals: on one queue they would wait out the timeout.
        let a = Task(executorPreference: executor) { () -> Bool in
            first.signal()
            return second.wait(timeout: .now() + 60) == .success && BlockingTestExecutor.isCurrentThreadOwn
        }
        let b = Task(executorPreference: executor) { () -> Bool in
            second.signal()
            return first.wait(timeout: .now() + 60) == .success && BlockingTestExecutor.isCurrentThreadOwn
        }
        #expect(await a.value)
        #expect(await b.value)
        #expect(executor.threadCount == 2)
    }
}

@Suite("Suites on the cooperative pool")
struct OnCooperativePoolTests {
    @Test("without the trait a synchronous test runs elsewhere")
    func synchronousTest() {
        #expect(!BlockingTestExecutor.isCurrentThreadOwn)
    }

    @Test("a poll that waits on the cooperative pool is an issue; one whose condition holds at once, or on a thread of its own, is not")
    func blockingWaitIsAnIssue() async throws {
        #expect(isOnCooperativePool)
        @Sendable func secondLook() throws {
            var looks = 0
            try poll(until: "a second look", interval: .milliseconds(1)) {
                looks += 1
                return looks > 1
            }
        }
        let reported: KnownIssueMatcher = { issue in
            issue.comments.contains { $0.rawValue.contains("poll(until: a second look) blocked a thread of the cooperative pool") }
        }
        try withKnownIssue("the wait is reported", secondLook, matching: reported)
        try poll(until: "nothing") { true }
        try await onThread { () throws in
            #expect(!isOnCooperativePool && BlockingTestExecutor.isCurrentThreadOwn)
            try secondLook()
        }
    }

    @Test("an issue recorded inside onThread is the calling test's (a plain thread's went to no test)")
    func issueInsideOnThread() async throws {
        let recorded: KnownIssueMatcher = { issue in
            issue.comments.contains { $0.rawValue == "recorded on the blocking thread" }
        }
        @Sendable func record() async throws {
            try await onThread { Issue.record("recorded on the blocking thread") }
        }
        try await withKnownIssue("the issue is the test's", record, matching: recorded)
    }
}

@Suite("Suites off the cooperative pool: blocking allowed", .offCooperativePool)
struct BlockingOffCooperativePoolTests {
    @Test("a poll that waits on the blocking executor's threads is no issue")
    func blockingWaitIsFine() async throws {
        #expect(!isOnCooperativePool)
        var looks = 0
        try poll(until: "a second look", interval: .milliseconds(1)) {
            looks += 1
            return looks > 1
        }
    }
}

@Suite("Async semaphore")
struct AsyncSemaphoreTests {
    @Test("no permit is handed out while none is free; each release passes one on")
    func permits() async {
        let semaphore = AsyncSemaphore(permits: 1)
        await semaphore.acquire()
        let order = Order()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<3 {
                group.addTask {
                    await semaphore.acquire()
                    order.append(index)
                    semaphore.release()
                }
            }
            // None gets a permit while the first is held.
            for _ in 0..<100 { await Task.yield() }
            #expect(order.indices.isEmpty)
            semaphore.release()
        }
        #expect(order.indices.sorted() == [0, 1, 2])
    }

    final class Order: Sendable {
        private let list = Mutex<[Int]>([])
        func append(_ index: Int) { list.withLock { $0.append(index) } }
        var indices: [Int] { list.withLock { $0 } }
    }
}
