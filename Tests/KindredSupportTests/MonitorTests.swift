#if canImport(Glibc)
import Glibc
#endif
import KindredSupport
import Testing

/// The wait primitives, without servers: every wait is bounded, and no sleep
/// orders the threads (they meet on the monitor's state).
@Suite("Monitor, threads and the stop signal", .timeLimit(.minutes(1)))
struct MonitorTests {
    @Test("a timed wait nobody signals returns false at its deadline, not before")
    func timedWaitTimesOut() {
        let monitor = Monitor(0)
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(50)
        let signalled = monitor.withLock { count, condition in condition.wait(&count, until: deadline) }
        let elapsed = ContinuousClock.now - start
        // A spurious wake-up may return true early; the loop form is tested below.
        if !signalled { #expect(elapsed >= .milliseconds(50)) }
        #expect(elapsed < .seconds(10))
        let late = monitor.withLock { count, condition in condition.wait(&count, until: start) }
        #expect(!late, "a deadline in the past returns at once")
    }

    @Test("a monitor without state (it guards a class's properties) waits out its deadlines and wakes on a signal")
    func statelessMonitorWaits() {
        final class Guarded: @unchecked Sendable {
            // @unchecked Sendable: `open` is touched only inside `lock.withLock`.
            let lock = Monitor(())
            var open = false
        }
        let guarded = Guarded()
        // Timed waits nobody signals, many times over: each returns false at its deadline.
        for _ in 0..<20 {
            let signalled = guarded.lock.withLock { _, condition in condition.wait(timeout: .milliseconds(1)) }
            if signalled { continue }  // spurious
        }
        let opener = startThread(name: "opener") {
            guarded.lock.withLock { _, condition in
                guarded.open = true
                condition.broadcast()
            }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        let opened = guarded.lock.withLock { _, condition -> Bool in
            while !guarded.open { if !condition.wait(until: deadline) { break } }
            return guarded.open
        }
        #expect(opened)
        #expect(opener.join(timeout: .seconds(30)))
    }

    @Test("a timed wait in a loop runs to its deadline")
    func loopedWaitRunsToDeadline() {
        let monitor = Monitor(false)
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(80)
        let flag = monitor.withLock { flag, condition in
            while !flag { if !condition.wait(&flag, until: deadline) { break } }
            return flag
        }
        #expect(!flag)
        #expect(ContinuousClock.now - start >= .milliseconds(80))
    }

    @Test("a signal ends a long wait early")
    func signalEndsWait() {
        let monitor = Monitor(false)
        let start = ContinuousClock.now
        startThread(name: "signaller") {
            monitor.withLock { flag, condition in
                flag = true
                condition.signal()
            }
        }
        let flag = monitor.withLock { flag, condition in
            while !flag { if !condition.wait(&flag, until: start + .seconds(30)) { break } }
            return flag
        }
        #expect(flag)
        #expect(ContinuousClock.now - start < .seconds(20))
    }

    @Test("broadcast wakes every waiter")
    func broadcastWakesAll() {
        let monitor = Monitor((open: false, woken: 0))
        let waiters = (0..<4).map { index in
            startThread(name: "waiter-\(index)") {
                monitor.withLock { state, condition in
                    while !state.open { condition.wait(&state) }
                    state.woken += 1
                }
            }
        }
        monitor.withLock { state, condition in
            state.open = true
            condition.broadcast()
        }
        for waiter in waiters { #expect(waiter.join(timeout: .seconds(20))) }
        #expect(monitor.withLock { state, _ in state.woken } == 4)
    }

    @Test("join waits for the thread's body and bounds the wait")
    func joinWaitsForBody() {
        let gate = Monitor(false)
        let thread = startThread(name: "gated", stackSize: 1 << 20) {
            gate.withLock { open, condition in
                while !open { condition.wait(&open) }
            }
        }
        let start = ContinuousClock.now
        #expect(!thread.join(timeout: .milliseconds(30)), "still blocked at the gate")
        #expect(ContinuousClock.now - start >= .milliseconds(30))
        #expect(!thread.isFinished)
        gate.withLock { open, condition in
            open = true
            condition.broadcast()
        }
        #expect(thread.join(timeout: .seconds(20)))
        #expect(thread.isFinished)
        #expect(thread.join(timeout: .zero), "a finished thread joins at once")
    }

    @Test("runOnThread returns the body's result or error")
    func runOnThreadResult() async throws {
        struct Failure: Error {}
        #expect(try await runOnThread(name: "answer") { 42 } == 42)
        await #expect(throws: Failure.self) { try await runOnThread(name: "failure") { () throws -> Int in throw Failure() } }
    }

    @Test("a stop signal ends a wait early, and a wait without one runs out")
    func stopSignal() {
        let stop = StopSignal()
        let start = ContinuousClock.now
        #expect(!stop.wait(.milliseconds(30)))
        #expect(ContinuousClock.now - start >= .milliseconds(30))
        #expect(!stop.isStopped)
        let waiter = startThread(name: "stop-waiter") { _ = stop.wait(.seconds(30)) }
        stop.stop()
        #expect(waiter.join(timeout: .seconds(20)))
        #expect(stop.isStopped)
        #expect(stop.wait(.seconds(30)), "once stopped, a wait returns at once")
    }

    @Test("Duration conversions")
    func durationConversions() {
        let d = Duration.seconds(2) + .nanoseconds(345_678_901)
        #expect(d.inSeconds == 2.345678901)
        #expect(d.inNanoseconds == 2_345_678_901)
        #expect(d.inMicroseconds == 2_345_678)
        #expect(d.wholeMilliseconds == 2345)
        #expect(d.timespec.tv_sec == 2 && d.timespec.tv_nsec == 345_678_901)
        #expect(Duration.milliseconds(-5).timespec.tv_sec == 0 && Duration.milliseconds(-5).timespec.tv_nsec == 0)
        let t = Duration.milliseconds(1500).timeval
        #expect(t.tv_sec == 1 && t.tv_usec == 500_000)
    }

    @Test("sleepThread sleeps at least its duration")
    func sleepThreadSleeps() {
        let start = ContinuousClock.now
        sleepThread(.milliseconds(20))
        #expect(ContinuousClock.now - start >= .milliseconds(20))
        sleepThread(.milliseconds(-1))  // returns at once
    }
}
