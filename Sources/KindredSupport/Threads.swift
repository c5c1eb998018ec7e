#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A thread started by ``startThread(name:stackSize:_:)``: wait for it to
/// finish with ``join(timeout:)``.
package struct ThreadHandle: Sendable {
    fileprivate let finished = Monitor(false)

    /// Waits until the thread's body returned, at most `timeout` (nil:
    /// without a limit); true when it did.
    @discardableResult
    package func join(timeout: Duration? = nil) -> Bool {
        let deadline = timeout.map { ContinuousClock.now + max($0, .zero) }
        return finished.withLock { finished, condition in
            while !finished {
                if let deadline {
                    if !condition.wait(&finished, until: deadline) { break }
                } else {
                    condition.wait(&finished)
                }
            }
            return finished
        }
    }

    /// Waits until every one of `threads` finished, at most `timeout` in
    /// all; true when they did.
    package static func join(_ threads: [ThreadHandle], timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        return threads.allSatisfy { $0.join(timeout: ContinuousClock.now.duration(to: deadline)) }
    }

    /// Whether the thread's body has returned.
    package var isFinished: Bool {
        finished.withLock { finished, _ in finished }
    }
}

/// What the new thread runs. Not Sendable: it crosses to the new thread as
/// the raw `pthread_create` argument, and the creating thread keeps no
/// reference to it (the same ownership transfer as a `sending` value).
private final class ThreadStart {
    let name: String
    let body: () -> Void
    let handle: ThreadHandle

    init(name: String, body: @escaping () -> Void, handle: ThreadHandle) {
        self.name = name
        self.body = body
        self.handle = handle
    }
}

/// Starts `body` on a new detached pthread (never Swift's cooperative pool:
/// for blocking C calls), named `name` (cut to the 15 bytes Linux keeps),
/// with `stackSize` bytes of stack (nil: the system's default). The one way
/// the code base starts a thread.
@discardableResult
package func startThread(name: String, stackSize: Int? = nil, _ body: sending @escaping () -> Void) -> ThreadHandle {
    let handle = ThreadHandle()
    let start = Unmanaged.passRetained(ThreadStart(name: name, body: body, handle: handle)).toOpaque()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    var thread = pthread_t()
    let created = pthread_create(&thread, &attributes, { argument in
        let start = Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue()
        nameThread(start.name)
        start.body()
        start.handle.finished.withLock { finished, condition in
            finished = true
            condition.broadcast()
        }
        return nil
    }, start)
    precondition(created == 0, "pthread_create failed: \(created)")
    return handle
}

/// Names the calling thread for `top -H`, `ps -L` and backtraces: Linux
/// keeps 15 bytes. (`pthread_setname_np` is not imported from Glibc.)
private func nameThread(_ name: String) {
    #if os(Linux)
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    defer { close(fd) }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    #else
    _ = pthread_setname_np(String(decoding: name.utf8.prefix(63), as: UTF8.self))
    #endif
}

/// Runs blocking work (libmariadb or hiredis calls) on a thread of its own
/// and returns its result to the awaiting task, so that the cooperative
/// pool never blocks on the network. One thread per call: for programs'
/// entry points and rare calls; steady traffic uses a ``BlockingExecutor``.
package func runOnThread<Result: Sendable>(
    name: String = "kindred-blocking", stackSize: Int? = 1 << 23, _ body: @escaping @Sendable () throws -> Result
) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        startThread(name: name, stackSize: stackSize) {
            continuation.resume(with: Swift.Result { try body() })
        }
    }
}
