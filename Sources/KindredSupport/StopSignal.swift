/// A one-way flag that tells plain threads to stop, and wakes any of them
/// waiting on it: a worker pausing between retries, a periodic task between
/// runs. Once set it stays set. ``wait(_:)`` is the one interruptible sleep.
package final class StopSignal: Sendable {
    private let stopped = Monitor(false)

    package init() {}

    package var isStopped: Bool {
        stopped.withLock { stopped, _ in stopped }
    }

    package func stop() {
        stopped.withLock { stopped, condition in
            stopped = true
            condition.broadcast()
        }
    }

    /// Waits up to `timeout` (on the monotonic clock) or until stopped; true
    /// when stopped.
    @discardableResult
    package func wait(_ timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + max(timeout, .zero)
        return stopped.withLock { stopped, condition in
            while !stopped {
                if !condition.wait(&stopped, until: deadline) { break }
            }
            return stopped
        }
    }
}
