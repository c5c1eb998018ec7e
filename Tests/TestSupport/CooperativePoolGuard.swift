import Foundation
import Testing

/// Whether the caller runs inside a task on a thread of Swift's
/// cooperative pool: not on ``BlockingTestExecutor``'s threads
/// (`.offCooperativePool` suites) and not on a thread of its own
/// (``onThread(_:_:)``, whose body runs outside any task).
package var isOnCooperativePool: Bool {
    withUnsafeCurrentTask { $0 != nil } && !BlockingTestExecutor.isCurrentThreadOwn
}

/// Fails the running test when `what`, a blocking wait that just ended,
/// held a thread of the cooperative pool. The pool has one thread per core
/// (two here): two such waits at once stop every async test in the process,
/// and the web servers the tests run with them, for as long as they last.
/// ``poll(until:timeout:interval:_:)`` and ``runProcess(_:_:environment:input:timeout:)``
/// check themselves; call them through ``onThread(_:_:)``, from an
/// `.offCooperativePool` suite, or use the async `poll`.
package func expectNotBlockingCooperativePool(
    _ what: @autoclosure () -> String, since start: ContinuousClock.Instant
) {
    guard isOnCooperativePool else { return }
    Issue.record(
        """
        \(what()) blocked a thread of the cooperative pool for \(ContinuousClock.now - start): \
        run it through onThread, in an .offCooperativePool suite, or use the async poll
        """)
}
