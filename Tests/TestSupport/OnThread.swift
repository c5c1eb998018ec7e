import Foundation

/// Runs a blocking test body off the cooperative pool and awaits its result.
///
/// Swift Testing runs tests on the cooperative pool, which has one thread
/// per core (two here): a test that blocks for long (waiting on servers or
/// child processes) starves every async test meanwhile. Long blocking tests
/// wrap their body in this.
///
/// The body runs in the calling task, on one of
/// ``BlockingTestExecutor/shared``'s threads (a task executor preference;
/// that executor never queues a job behind another), named `name` (its
/// first 15 bytes) while it runs. Being in the test's task, `#expect` and `#require` inside it
/// record their issues against the test: on a plain thread, outside any
/// task, they were recorded against no test ("«unknown»") and the test
/// itself was reported as passing.
package func onThread<T: Sendable>(
    _ name: String = "kindred-test", _ body: @escaping @Sendable () throws -> T
) async throws -> T {
    try await withTaskExecutorPreference(BlockingTestExecutor.shared) {
        try runNamed(name, body)
    }
}

/// Runs `body` with the current thread named `name` (for `top -H` and
/// backtraces), then gives the thread its name back.
private func runNamed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
    let thread = Thread.current
    let previous = thread.name
    thread.name = String(decoding: name.utf8.prefix(15), as: UTF8.self)  // Linux keeps 15 bytes, else none
    defer { thread.name = previous }
    return try body()
}
