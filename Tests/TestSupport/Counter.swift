import Synchronization

/// A count shared by threads (the tests' one counter).
package final class Counter: Sendable {
    private let count = Mutex(0)

    package init() {}

    /// Adds one.
    package func add() { count.withLock { $0 += 1 } }

    /// Adds one and returns the new count.
    package func next() -> Int { count.withLock { $0 += 1; return $0 } }

    package var value: Int { count.withLock { $0 } }
}
