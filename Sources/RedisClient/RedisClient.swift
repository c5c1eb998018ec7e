#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Process-wide set-up for programs that use ``RedisConnection``.
package enum RedisClient {
    /// Ignores SIGPIPE for the whole process. Call it once at program start,
    /// before any connection is opened; calling it again does nothing.
    ///
    /// hiredis writes with `write(2)`, which raises SIGPIPE when the server
    /// has gone away (killed, restarted, connection reset). SIGPIPE's default
    /// action ends the process at once, with exit status 141 and no log line.
    /// Ignored, the same write fails with EPIPE instead, which the connection
    /// reports as a broken connection (`I/O error: Broken pipe`).
    ///
    /// Linux has no per-socket `SO_NOSIGPIPE`, and hiredis does not pass
    /// `MSG_NOSIGNAL`, so this has to be process-wide.
    package static func ignoreSIGPIPE() {
        _ = sigpipeIgnored
    }

    /// Initialised once, thread-safely, on first use (a global `static let`).
    private static let sigpipeIgnored: Bool = {
        signal(SIGPIPE, SIG_IGN)
        return true
    }()
}
