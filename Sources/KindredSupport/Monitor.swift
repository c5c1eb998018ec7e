#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// State guarded by a mutex, with a condition variable to wait on until the
/// state changes: the one wait primitive of the blocking layers (executors,
/// the stop signal, channels, pools, thread joins). Plain exclusion without
/// waiting is `Synchronization.Mutex`; use this only where a thread sleeps
/// until another changes the state.
///
/// Timed waits take a `ContinuousClock.Instant` and wait on the monotonic
/// clock (a wall-clock step cannot stretch or cut a wait). Never hold the
/// lock across a blocking call other than ``Condition/wait()``.
package final class Monitor<State>: @unchecked Sendable {
    // Why this is safe: `state` is read and written only inside `withLock`,
    // that is while `mutex` is held (a condition wait releases and retakes
    // it, as pthread guarantees); the state comes in `sending` and every
    // result leaves `sending`, so no reference into the state escapes
    // unchecked (the same contract as `Synchronization.Mutex`). The pthread
    // objects are allocated once, never moved, and destroyed in `deinit`,
    // when no thread can hold the lock any more.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var state: State

    package init(_ state: sending State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        #if canImport(Glibc)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        #else
        pthread_cond_init(condition, nil)
        #endif
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// The condition of a ``Monitor``, handed to the body of
    /// ``Monitor/withLock(_:)``: valid only inside that body, while the lock
    /// is held (not Sendable, so it cannot be sent to another thread).
    package struct Condition {
        fileprivate let mutex: UnsafeMutablePointer<pthread_mutex_t>
        fileprivate let condition: UnsafeMutablePointer<pthread_cond_t>

        /// Releases the lock until signalled, then retakes it. Wake-ups can
        /// be spurious: loop on the state.
        package func wait() {
            pthread_cond_wait(condition, mutex)
        }

        /// As ``wait()``, but gives up at `deadline`; false when the
        /// deadline passed (true may still be spurious: loop on the state).
        package func wait(until deadline: ContinuousClock.Instant) -> Bool {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return false }
            #if canImport(Glibc)
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let (seconds, attoseconds) = remaining.components
            let nanoseconds = Int(now.tv_nsec) + Int(attoseconds / 1_000_000_000)
            var end = timespec(
                tv_sec: now.tv_sec + time_t(seconds) + time_t(nanoseconds / 1_000_000_000),
                tv_nsec: nanoseconds % 1_000_000_000)
            return pthread_cond_timedwait(condition, mutex, &end) != ETIMEDOUT
            #else
            var relative = remaining.timespec
            return pthread_cond_timedwait_relative_np(condition, mutex, &relative) != ETIMEDOUT
            #endif
        }

        /// As ``wait(until:)`` with a deadline `timeout` from now.
        package func wait(timeout: Duration) -> Bool {
            wait(until: .now + timeout)
        }

        /// Wakes one waiting thread.
        package func signal() {
            pthread_cond_signal(condition)
        }

        /// Wakes every waiting thread.
        package func broadcast() {
            pthread_cond_broadcast(condition)
        }
    }

    /// Runs `body` with the lock held, on the state and the condition.
    package func withLock<R, E: Error>(
        _ body: (inout sending State, Condition) throws(E) -> sending R
    ) throws(E) -> sending R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state, Condition(mutex: mutex, condition: condition))
    }
}
