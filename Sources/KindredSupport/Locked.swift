import Synchronization

/// A `Synchronization.Mutex` shared by reference: for state that escaping
/// closures capture (a `Mutex` cannot be copied into one), such as what a
/// periodic task carries from one run to the next. Same lock, same rules.
package final class Locked<Value>: Sendable {
    private let mutex: Mutex<Value>

    package init(_ value: sending Value) {
        mutex = Mutex(value)
    }

    /// Runs `body` with the lock held, on the value.
    package func withLock<R, E: Error>(_ body: (inout sending Value) throws(E) -> sending R) throws(E) -> sending R {
        try mutex.withLock(body)
    }
}
