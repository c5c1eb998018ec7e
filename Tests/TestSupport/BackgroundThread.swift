import Foundation

/// Runs a blocking closure on a thread of its own (not Swift's cooperative
/// pool: it blocks on the network), so a test can act on a server while the
/// closure waits on it, then collect the result with a bounded wait.
public final class BackgroundThread<Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `value` is written once, under `lock`, before
    // `finished` is signalled, and read under `lock` after the wait.
    private let lock = NSLock()
    private var value: Value?
    private let finished = DispatchSemaphore(value: 0)
    private let name: String

    public init(_ name: String, _ body: @escaping @Sendable () -> Value) {
        self.name = name
        let thread = Thread { [self] in
            let result = body()
            lock.withLock { value = result }
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Whether the closure has returned.
    public var isFinished: Bool { lock.withLock { value != nil } }

    /// The closure's result; throws when it has not finished within `timeout`.
    public func result(timeout: Duration = .seconds(30)) throws -> Value {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        guard finished.wait(timeout: .now() + seconds) == .success else {
            throw TestSupportError("\(name) did not finish within \(timeout)")
        }
        return lock.withLock { value! }
    }
}
