import Foundation

/// Runs blocking work (libmariadb calls) on a thread of its own and returns
/// its result to the awaiting task, so that the cooperative pool never
/// blocks on the network. For programs' entry points: one thread per call.
public func onDedicatedThread<Result: Sendable>(
    name: String = "kindred-blocking", _ body: @escaping @Sendable () throws -> Result
) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Swift.Result { try body() })
        }
        thread.name = name
        thread.stackSize = 1 << 23
        thread.start()
    }
}
