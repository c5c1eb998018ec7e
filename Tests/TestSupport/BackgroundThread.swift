import KindredSupport

/// Runs a blocking closure on a thread of its own (not Swift's cooperative
/// pool: it blocks on the network), so a test can act on a server while the
/// closure waits on it, then collect the result with a bounded wait.
package final class BackgroundThread<Value: Sendable>: Sendable {
    private let value: Locked<Value?>
    private let thread: ThreadHandle
    private let name: String

    package init(_ name: String, _ body: @escaping @Sendable () -> Value) {
        self.name = name
        let value = Locked<Value?>(nil)
        self.value = value
        thread = startThread(name: name) {
            let result = body()
            value.withLock { $0 = result }
        }
    }

    /// Whether the closure has returned.
    package var isFinished: Bool { value.withLock { $0 != nil } }

    /// The closure's result; throws when it has not finished within `timeout`.
    package func result(timeout: Duration = .seconds(30)) throws -> Value {
        guard thread.join(timeout: timeout) else {
            throw TestSupportError("\(name) did not finish within \(timeout)")
        }
        return value.withLock { $0! }
    }
}
