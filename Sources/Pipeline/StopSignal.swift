import Foundation

/// A one-way flag that tells plain threads to stop, and wakes any of them
/// waiting on it: a worker pausing between retries, a periodic task between
/// runs. Once set it stays set.
public final class StopSignal: @unchecked Sendable {
    // @unchecked Sendable: `stopped` is guarded by `condition`'s lock.
    private let condition = NSCondition()
    private var stopped = false

    public init() {}

    public var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits up to `timeout` or until stopped; true when stopped.
    @discardableResult
    public func wait(_ timeout: Duration) -> Bool {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let deadline = Date(timeIntervalSinceNow: max(0, seconds))
        condition.lock()
        defer { condition.unlock() }
        while !stopped {
            if !condition.wait(until: deadline) { break }
        }
        return stopped
    }
}
