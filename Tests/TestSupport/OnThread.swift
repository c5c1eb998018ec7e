import Foundation

/// Runs a blocking test body on a thread of its own and awaits its result.
///
/// Swift Testing runs tests on the cooperative pool, which has one thread
/// per core (two here): a test that blocks for long (waiting on servers or
/// child processes) starves every async test meanwhile. Long blocking tests
/// wrap their body in this.
package func onThread<T: Sendable>(
    _ name: String = "kindred-test", _ body: @escaping @Sendable () throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }
}
