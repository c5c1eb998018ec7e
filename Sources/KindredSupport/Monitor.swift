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
/// lock across a blocking call other than ``Condition/wait(_:)``.
package final class Monitor<State>: @unchecked Sendable {
    // Why this is safe: the state lives in `storage` and is touched only
    // while `mutex` is held: ``withLock(_:)`` moves it out into the body's
    // own variable and back before unlocking, and a wait puts it back before
    // releasing the lock and takes it out again after retaking it (so a body
    // never works on a value another thread changed behind it: see
    // ``Condition/wait(_:)``). The state comes in `sending` and every result
    // leaves `sending`, so no reference into the state escapes unchecked
    // (the same contract as `Synchronization.Mutex`). The pthread objects and
    // the storage are allocated once, never moved, and destroyed in `deinit`,
    // when no thread can hold the lock any more.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private let storage: UnsafeMutablePointer<State>

    package init(_ state: sending State) {
        storage = .allocate(capacity: 1)
        storage.initialize(to: state)
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
        storage.deinitialize(count: 1)
        storage.deallocate()
    }

    /// The condition of a ``Monitor``, handed to the body of
    /// ``Monitor/withLock(_:)``: valid only inside that body, while the lock
    /// is held (not Sendable, so it cannot be sent to another thread).
    ///
    /// Every wait takes the body's state: the body holds it as an `inout`
    /// value, which the optimizer may keep in registers across any call that
    /// is not handed it. So a wait stores it back where other threads see
    /// it, waits, and loads what they left (a wait that did not take it
    /// would let a release build loop on a stale copy: it did, in
    /// `BoundedChannel`, an import that read no line).
    ///
    /// Pass a wait the body's own state parameter, nothing else: the value
    /// passed is what the others see while the thread sleeps, and what they
    /// left is written into it.
    package struct Condition {
        fileprivate let mutex: UnsafeMutablePointer<pthread_mutex_t>
        fileprivate let condition: UnsafeMutablePointer<pthread_cond_t>
        fileprivate let storage: UnsafeMutablePointer<State>

        /// Releases the lock until signalled, then retakes it; `state` is
        /// then what other threads left. Wake-ups can be spurious: loop on
        /// the state.
        package func wait(_ state: inout State) {
            // Moved, not copied: a copy would keep a second reference to the
            // state's buffers while the thread sleeps, and every change the
            // others make meanwhile would copy them whole. Typed moves, not
            // `moveInitialize(from:count:)`: that copies a stride of bytes,
            // and for an empty state (`Void`: size 0, stride 1) the pointer
            // to the caller's variable may point at read-only memory.
            withUnsafeMutablePointer(to: &state) { local in
                storage.initialize(to: local.move())
                pthread_cond_wait(condition, mutex)
                local.initialize(to: storage.move())
            }
        }

        /// As ``wait(_:)``, but gives up at `deadline`; false when the
        /// deadline passed (true may still be spurious: loop on the state).
        package func wait(_ state: inout State, until deadline: ContinuousClock.Instant) -> Bool {
            guard deadline > .now else { return false }
            return withUnsafeMutablePointer(to: &state) { local in
                storage.initialize(to: local.move())
                defer { local.initialize(to: storage.move()) }
                return timedWait(until: deadline)
            }
        }

        /// The lock released until signalled or `deadline`, then retaken;
        /// false when the deadline passed. Touches no state.
        fileprivate func timedWait(until deadline: ContinuousClock.Instant) -> Bool {
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

        /// As ``wait(_:until:)`` with a deadline `timeout` from now.
        package func wait(_ state: inout State, timeout: Duration) -> Bool {
            wait(&state, until: .now + timeout)
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
        var state = storage.move()
        defer { storage.initialize(to: state) }
        return try body(&state, Condition(mutex: mutex, condition: condition, storage: storage))
    }
}

extension Monitor.Condition where State == Void {
    /// ``wait(_:)`` for a monitor without state of its own: one that guards
    /// a class's stored properties (the object's memory is shared, so the
    /// body reads it afresh after the wait). Nothing to store or reload:
    /// the condition variable alone.
    package func wait() {
        pthread_cond_wait(condition, mutex)
    }

    /// ``wait(_:until:)`` for a monitor without state of its own.
    package func wait(until deadline: ContinuousClock.Instant) -> Bool {
        timedWait(until: deadline)
    }

    /// ``wait(_:timeout:)`` for a monitor without state of its own.
    package func wait(timeout: Duration) -> Bool {
        timedWait(until: .now + timeout)
    }
}
