import Foundation
import KindredSupport
import Synchronization
import Testing

/// Runs a suite's tests on the test support's own threads instead of Swift's
/// cooperative pool.
///
/// Swift Testing calls a synchronous test function on a cooperative-pool
/// thread, and the pool has one thread per core: two here. A test that
/// computes for seconds, or blocks on a server, a child process or
/// `Thread.sleep`, holds one of them for as long as it runs. With both held,
/// no async test advances at all: a full run once kept every async test
/// (and Swift Testing's own exit-test bookkeeping, which left finished
/// children as zombies meanwhile) waiting for about a minute, and exit tests
/// with a one-minute limit failed on a slower machine without having done
/// anything wrong.
///
/// Under this trait a suite's tests run on ``BlockingTestExecutor/shared``,
/// on threads of their own that the kernel schedules like any others:
/// blocking tests share the cores with the async ones instead of locking
/// them out.
/// A few such suites run at once (``BlockingTestExecutor/admission``), as
/// the pool's width limited them before: a test's time limit starts when
/// its suite is admitted, so it counts the test's own run and a short
/// queue, not every other blocking suite's.
///
/// The preference is set on the suite and inherited by its tests (and their
/// `async let` and task-group children); unstructured tasks and Swift
/// Testing's own work stay on the pool.
package struct OffCooperativePool: SuiteTrait, TestScoping {
    package var isRecursive: Bool { false }

    /// The suite's own step only (the default scopes test cases): one
    /// admission for the suite, never a second one inside it.
    package func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        test.isSuite && testCase == nil ? self : nil
    }

    package func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard test.isSuite, testCase == nil else {
            try await function()
            return
        }
        let executor = BlockingTestExecutor.shared
        await executor.admission.acquire()
        defer { executor.admission.release() }
        try await withTaskExecutorPreference(executor) {
            try await function()
        }
    }
}

extension Trait where Self == OffCooperativePool {
    /// This suite's tests block or compute for long: run them on threads of
    /// their own (``OffCooperativePool``).
    package static var offCooperativePool: Self { Self() }
}

/// A counting semaphore for tasks: `acquire` suspends (it never blocks a
/// thread) until a permit is free; waiters are served in order.
package final class AsyncSemaphore: Sendable {
    private struct State {
        var permits: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    package init(permits: Int) {
        state = Mutex(State(permits: permits))
    }

    package func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                if state.permits > 0 {
                    state.permits -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    package func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.permits += 1
                return nil
            }
            return state.waiters.removeFirst()  // the permit passes to it
        }
        next?.resume()
    }
}

/// A task executor that never queues a job behind another: a job runs at
/// once on an idle thread of its own, or on a new one. Threads stay for the
/// next jobs. How many there are is bounded by what is admitted: the tests
/// of a few suites at a time (``admission``).
///
/// Not a fixed set of threads: with one, a test's body could wait in the
/// queue behind another suite's long tests while its time limit runs.
package final class BlockingTestExecutor: TaskExecutor, Sendable {
    /// Three suites at a time: the cooperative pool ran two synchronous
    /// tests at a time on this two-core machine, and blocking tests spend
    /// most of their time waiting on servers.
    package static let shared = BlockingTestExecutor(suites: 3)

    /// Permits to run a suite on this executor.
    package let admission: AsyncSemaphore

    private struct State {
        var jobs: [UnownedJob] = []
        var idle = 0
        var threads = 0
    }
    private let state = Monitor(State())

    package init(suites: Int) {
        precondition(suites > 0)
        admission = AsyncSemaphore(permits: suites)
    }

    private static let marker = "kindred.BlockingTestExecutor"

    /// Whether the calling thread is one of a blocking test executor's.
    package static var isCurrentThreadOwn: Bool {
        Thread.current.threadDictionary[marker] as? Bool == true
    }

    /// Threads started so far: the most jobs that ran at once.
    package var threadCount: Int {
        state.withLock { state, _ in state.threads }
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let (start, index) = state.withLock { state, condition -> (Bool, Int) in
            state.jobs.append(job)
            let start = state.jobs.count > state.idle
            if start { state.threads += 1 } else { condition.signal() }
            return (start, state.threads)
        }
        if start { startWorker(index) }
    }

    private func startWorker(_ index: Int) {
        // Named for `top -H` and backtraces (a thread starts with its creator's name).
        startThread(name: "kindred-test-\(index)", stackSize: 8 << 20) { [self] in
            Thread.current.threadDictionary[Self.marker] = true
            work()
        }
    }

    private func work() {
        while true {
            let job = state.withLock { state, condition -> UnownedJob in
                while state.jobs.isEmpty {
                    state.idle += 1
                    condition.wait(&state)
                    state.idle -= 1
                }
                return state.jobs.removeFirst()
            }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
