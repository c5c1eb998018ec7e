import CHiredis
import KindredSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One synchronous connection to a Redis-compatible server, owning one hiredis
/// `redisContext`.
///
/// Threading: not `Sendable`. A connection is used by one thread at a time,
/// and its calls block that thread on the network (up to
/// ``Configuration/readTimeout`` per read or write). Never call it from
/// Swift's cooperative thread pool; give it a thread of its own.
///
/// States:
/// - *open*: commands go out and replies come back.
/// - *broken*: an EOF, IO, protocol or timeout error killed the connection
///   (hiredis cannot recover a context once its `err` is set). The context is
///   freed at once; every later read throws an error whose
///   ``RedisError/isConnectionBroken`` is true, without touching the network,
///   until ``reconnect()`` succeeds.
/// - *closed*: after ``close()``. Using a closed connection is a programming
///   error and stops the process (`precondition`).
///
/// Sending: ``send(_:)`` is one round trip (with retry of `BUSY`/`LOADING`,
/// see ``RedisRetryPolicy``); ``pipeline(_:)`` sends many commands and reads
/// one result per command; ``append(_:)``/``readReply()`` are the streaming
/// form underneath both, for callers that pipeline in batches without building
/// an array of commands.
///
/// Error replies (`-ERR ...`) are values (``RedisValue/error(_:)``), not
/// thrown: the connection is healthy after one. ``sendChecked(_:)`` and
/// ``RedisValue/checked(context:)`` throw them instead.
///
/// SIGPIPE: a write to a server that has died raises SIGPIPE, which kills the
/// process (exit status 141) unless it is ignored. Programs call
/// ``RedisClient/ignoreSIGPIPE()`` once at start.
package final class RedisConnection {
    /// Where to connect, as whom, and how long to wait.
    ///
    /// `description`, `debugDescription` and the reflection mirror show the
    /// password as `***`: a configuration can be logged whole.
    package struct Configuration: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
        CustomReflectable
    {
        /// Host name or IP address.
        package var host: String
        /// TCP port, 1...65535.
        package var port: Int
        /// The ACL user for `AUTH user password` (Redis 6+); nil: the
        /// default user (`AUTH password`). Ignored without a password.
        package var user: String?
        /// Sent with `AUTH` right after every connect and reconnect; nil: no `AUTH`.
        package var password: String?
        /// Selected with `SELECT` right after `AUTH` on every connect and
        /// reconnect, before any other command (scripts included); 0 sends
        /// no `SELECT` (the only database a Redis Cluster has).
        package var database: Int
        /// Bounds establishing the TCP connection (`redisConnectWithTimeout`).
        package var connectTimeout: Duration
        /// Bounds each read and each write on the socket (`redisSetTimeout`,
        /// i.e. `SO_RCVTIMEO` and `SO_SNDTIMEO`); `nil` waits forever. A
        /// timeout breaks the connection (``RedisError/Code/timedOut``), so it
        /// must exceed the slowest expected command, blocking ones included.
        package var readTimeout: Duration?
        /// Turns on TCP keepalive (`redisEnableKeepAlive`: first probe after
        /// 15 s idle), so a peer that vanished without a FIN is noticed.
        package var keepAlive: Bool
        /// Retry of `BUSY` and `LOADING` replies for ``RedisConnection/send(_:)``.
        package var retry: RedisRetryPolicy

        package init(
            host: String,
            port: Int,
            user: String? = nil,
            password: String? = nil,
            database: Int = 0,
            connectTimeout: Duration = .seconds(2),
            readTimeout: Duration? = .seconds(5),
            keepAlive: Bool = true,
            retry: RedisRetryPolicy = .default
        ) {
            precondition((1...65535).contains(port), "port must be 1...65535")
            precondition(database >= 0, "database must be 0 or more")
            precondition(connectTimeout >= .milliseconds(1), "connectTimeout must be at least 1 ms")
            precondition(readTimeout.map { $0 >= .milliseconds(1) } ?? true, "readTimeout must be at least 1 ms, or nil")
            self.host = host
            self.port = port
            self.user = user
            self.password = password
            self.database = database
            self.connectTimeout = connectTimeout
            self.readTimeout = readTimeout
            self.keepAlive = keepAlive
            self.retry = retry
        }

        /// `host:port`, the context of every error.
        package var endpoint: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// `redis://user@host:port/db`: the server and the user, never the password.
        package var server: String {
            var text = "redis://"
            if password != nil, let user { text += PercentEncoding.encode(user) + "@" }
            return text + endpoint + (database == 0 ? "" : "/\(database)")
        }

        package var description: String {
            var text = "redis://"
            if password != nil {
                if let user { text += PercentEncoding.encode(user) }
                text += ":***@"
            }
            return "RedisConnection.Configuration(" + text + endpoint + (database == 0 ? "" : "/\(database)") + ")"
        }

        package var debugDescription: String { description }

        package var customMirror: Mirror {
            Mirror(self, children: [
                "host": host, "port": port, "user": user as Any, "password": password == nil ? "nil" : "***",
                "database": database, "connectTimeout": connectTimeout, "readTimeout": readTimeout as Any,
                "keepAlive": keepAlive, "retry": retry,
            ])
        }
    }

    private enum State {
        case open(UnsafeMutablePointer<redisContext>)
        case broken(RedisError)
        case closed
    }

    /// The configuration this connection was opened with; ``reconnect()`` reuses it.
    package let configuration: Configuration

    private var state: State

    /// Commands appended whose replies have not been read yet.
    package private(set) var pendingReplyCount = 0

    /// Called before each retry sleep of ``send(_:)``, on the calling thread.
    package var retryObserver: ((RedisRetryEvent) -> Void)?

    /// The buffer ``append(_:building:)`` encodes into, kept between calls.
    private var scratch: RedisCommand?

    /// Connects, applies the read timeout and keepalive, then sends `AUTH`
    /// and `SELECT` when the configuration asks for them (one round trip).
    ///
    /// - Throws: ``RedisError/Code/connectionFailed`` when the server cannot be
    ///   reached within ``Configuration/connectTimeout`` or refuses the
    ///   database; ``RedisError/Code/authenticationFailed`` when it refuses
    ///   the credentials.
    package init(configuration: Configuration) throws(RedisError) {
        self.configuration = configuration
        self.state = .open(try Self.connect(configuration))
        try handshake()
    }

    /// Connects to `host:port` with the default timeouts, keepalive and retry.
    package convenience init(host: String, port: Int) throws(RedisError) {
        try self.init(configuration: Configuration(host: host, port: port))
    }

    deinit {
        if case .open(let context) = state { redisFree(context) }
    }

    /// `host:port`.
    package var endpoint: String { configuration.endpoint }

    /// True after ``close()``.
    package var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// True when the connection died and needs ``reconnect()``.
    package var isBroken: Bool {
        if case .broken = state { return true }
        return false
    }

    /// Closes the socket and frees the context. Unread replies are dropped.
    /// Closing twice is harmless; any other use afterwards is a precondition
    /// failure.
    package func close() {
        if case .open(let context) = state { redisFree(context) }
        state = .closed
        pendingReplyCount = 0
    }

    /// Drops the current socket (healthy or broken) and connects again with
    /// the same configuration, applying the read timeout and keepalive again.
    /// Unread replies are dropped.
    ///
    /// This opens a fresh context instead of calling hiredis' `redisReconnect`,
    /// which in 0.14.1 drops the socket options and, when the new connect
    /// fails before a socket exists, leaves the old (closed) descriptor number
    /// in the context for `redisFree` to close a second time.
    ///
    /// - Throws: ``RedisError/Code/connectionFailed``; the connection then
    ///   stays broken and may be reconnected again later.
    package func reconnect() throws(RedisError) {
        checkNotClosed()
        if case .open(let context) = state { redisFree(context) }
        pendingReplyCount = 0
        do {
            state = .open(try Self.connect(configuration))
            try handshake()
        } catch {
            state = .broken(RedisError(
                code: .connectionBroken,
                message: "not connected: the last reconnect failed (\(error.message))",
                context: endpoint))
            throw error
        }
    }

    // MARK: Round trips

    /// Sends one command and reads its reply, retrying `BUSY` and `LOADING`
    /// replies as ``Configuration/retry`` says (the thread sleeps between
    /// attempts). Other error replies, and a retryable one after the last
    /// attempt, are returned as ``RedisValue/error(_:)``.
    ///
    /// - Precondition: no appended command awaits its reply.
    /// - Throws: a transport error (``RedisError/isConnectionBroken``), also
    ///   when the connection was already broken.
    package func send(_ command: RedisCommand) throws(RedisError) -> RedisValue {
        checkNotClosed()
        precondition(pendingReplyCount == 0, "send() while appended commands await their replies: read them first")
        let policy = configuration.retry
        var attempt = 1
        while true {
            append(command)
            let value: RedisValue
            do {
                value = try readReply()
            } catch {
                throw error.naming(command.name)
            }
            guard case .error(let message) = value,
                attempt < policy.maxAttempts,
                RedisRetryPolicy.isRetryable(errorMessage: message)
            else { return value }
            attempt += 1
            let delay = policy.delay(beforeAttempt: attempt)
            retryObserver?(RedisRetryEvent(
                command: command.name,
                failedAttempt: attempt - 1,
                errorKind: RedisError.kind(ofServerMessage: message),
                delay: delay))
            sleepThread(delay)
        }
    }

    /// ``send(_:)``, throwing an error reply as ``RedisError/Code/serverError``.
    package func sendChecked(_ command: RedisCommand) throws(RedisError) -> RedisValue {
        let value = try send(command)
        if case .error(let message) = value {
            throw RedisError.serverError(message, context: endpoint, command: command.name)
        }
        return value
    }

    /// Sends `commands` in one write and reads one result per command, in
    /// order. An error reply is a `.success(.error(...))` and does not affect
    /// the others. When the connection breaks part way, the command being read
    /// gets the specific error (EOF, IO, timeout) and every later one a
    /// ``RedisError/Code/connectionBroken`` error; nothing blocks beyond the
    /// read timeout.
    ///
    /// No retry happens here: a `BUSY` or `LOADING` reply is returned as a
    /// value for that command (which the server did not run, so the caller
    /// may send it again).
    ///
    /// Cost: the commands are buffered in memory until sent; pipeline in
    /// batches of 500-1000 commands (or ~1 MB) rather than all at once.
    ///
    /// - Precondition: no appended command awaits its reply.
    package func pipeline(_ commands: some Collection<RedisCommand>) -> [Result<RedisValue, RedisError>] {
        checkNotClosed()
        precondition(pendingReplyCount == 0, "pipeline() while appended commands await their replies: read them first")
        for command in commands { append(command) }
        var results: [Result<RedisValue, RedisError>] = []
        results.reserveCapacity(commands.count)
        for command in commands {
            do {
                results.append(.success(try readReply()))
            } catch {
                results.append(.failure(error.naming(command.name)))
            }
        }
        return results
    }

    // MARK: Streaming

    /// Queues `command` in the output buffer; nothing is written until
    /// ``readReply()`` or ``flush()``. Each appended command must get its
    /// reply read with ``readReply()``, in order.
    ///
    /// Never throws: on a broken connection the command is counted and its
    /// ``readReply()`` throws.
    package func append(_ command: RedisCommand) {
        checkNotClosed()
        pendingReplyCount += 1
        guard case .open(let context) = state else { return }
        let appended = command.withEncodedHeader { header in
            redisAppendFormattedCommand(context, Self.chars(header), header.count) == REDIS_OK
        } && command.withEncodedBody { body in
            redisAppendFormattedCommand(context, Self.chars(body), body.count) == REDIS_OK
        }
        if !appended { _ = breakConnection(context) }
    }

    /// Starts a command named `name` in a buffer the connection keeps between
    /// calls, lets `build` append its arguments, and queues it like
    /// ``append(_:)``: encoding many commands this way allocates nothing once
    /// the buffer has grown. If `build` throws, nothing is queued.
    package func append<E: Error>(_ name: String, building build: (inout RedisCommand) throws(E) -> Void) throws(E) {
        var command = scratch ?? RedisCommand(name, reservingCapacity: 4096)
        scratch = nil
        command.reset(name)
        do {
            try build(&command)
        } catch {
            scratch = command
            throw error
        }
        append(command)
        scratch = command
    }

    /// Writes every queued command now, without reading. Useful to start a
    /// command whose reply will be read later (a blocking command, a script).
    package func flush() throws(RedisError) {
        checkNotClosed()
        switch state {
        case .closed: return
        case .broken(let error): throw error
        case .open(let context):
            var done: Int32 = 0
            repeat {
                if redisBufferWrite(context, &done) != REDIS_OK { throw breakConnection(context) }
            } while done == 0
        }
    }

    /// Reads the reply to the oldest appended command, writing queued commands
    /// first. An error reply is returned as a value.
    ///
    /// - Precondition: a command awaits its reply (``pendingReplyCount`` > 0),
    ///   otherwise the read would wait for a reply that never comes.
    /// - Throws: the transport error that broke the connection; once broken,
    ///   each remaining reply throws ``RedisError/Code/connectionBroken`` at once.
    package func readReply() throws(RedisError) -> RedisValue {
        try withNextRawReply { RedisValue(copying: $0) }
    }

    /// The next reply, raw, to `body` before it is freed.
    func withNextRawReply<T>(_ body: (UnsafePointer<redisReply>) -> T) throws(RedisError) -> T {
        checkNotClosed()
        precondition(pendingReplyCount > 0, "readReply() with no command awaiting a reply")
        pendingReplyCount -= 1
        switch state {
        case .closed:
            preconditionFailure("unreachable: checked above")
        case .broken(let error):
            throw error
        case .open(let context):
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw breakConnection(context)
            }
            defer { freeReplyObject(raw) }
            return body(UnsafePointer(raw.assumingMemoryBound(to: redisReply.self)))
        }
    }

    // MARK: Internals

    /// `AUTH` and `SELECT`, pipelined, before anything else is sent on a new
    /// socket. On failure the socket is dropped (the connection is broken)
    /// and the error says what the server refused, naming the server and the
    /// user but never the password.
    private func handshake() throws(RedisError) {
        var commands: [RedisCommand] = []
        if let password = configuration.password {
            commands.append(configuration.user.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if configuration.database != 0 { commands.append(["SELECT", String(configuration.database)]) }
        guard !commands.isEmpty else { return }
        let results = pipeline(commands)
        var failure: RedisError?
        for (index, result) in results.enumerated() where failure == nil {
            let isAuth = configuration.password != nil && index == 0
            switch result {
            case .failure(let error):
                failure = RedisError(
                    code: .connectionFailed,
                    message: "connected, but the connection broke during \(isAuth ? "AUTH" : "SELECT"): \(error.message)",
                    context: endpoint)
            case .success(.error(let message)):
                let reply = RedisError.redactServerMessage(message)
                failure = isAuth
                    ? RedisError(code: .authenticationFailed, message: "authentication failed for \(configuration.server): \(reply)", context: endpoint)
                    : RedisError(code: .connectionFailed, message: "cannot select database \(configuration.database) on \(configuration.server): \(reply)", context: endpoint)
            case .success:
                break
            }
        }
        guard let failure else { return }
        if case .open(let context) = state { redisFree(context) }
        state = .broken(RedisError(code: .connectionBroken, message: "not connected: \(failure.message)", context: endpoint))
        throw failure
    }

    private func checkNotClosed() {
        if case .closed = state {
            preconditionFailure("RedisConnection to \(endpoint) used after close()")
        }
    }

    /// Turns the context's error into a `RedisError`, frees the dead context
    /// and moves to the broken state. Returns the specific error (for the
    /// command that met it); later reads get a generic broken-connection error.
    private func breakConnection(_ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        let error = Self.transportError(context, configuration: configuration)
        redisFree(context)
        state = .broken(RedisError(
            code: .connectionBroken,
            message: "connection broken earlier (\(error.code): \(error.message)); reconnect",
            context: endpoint))
        return error
    }

    private static func transportError(
        _ context: UnsafeMutablePointer<redisContext>,
        configuration: Configuration
    ) -> RedisError {
        let savedErrno = errno
        let kind = context.pointee.err
        let text = errorText(context)
        switch kind {
        case REDIS_ERR_IO where savedErrno == EAGAIN || text == String(cString: strerror(EAGAIN)):
            let limit = configuration.readTimeout.map { " of \($0)" } ?? ""
            return RedisError(code: .timedOut, message: "no reply within the read timeout\(limit) (\(text))", context: configuration.endpoint)
        case REDIS_ERR_IO:
            return RedisError(code: .connectionBroken, message: "I/O error: \(text)", context: configuration.endpoint)
        case REDIS_ERR_EOF:
            return RedisError(code: .connectionBroken, message: "end of file: \(text)", context: configuration.endpoint)
        case REDIS_ERR_PROTOCOL:
            return RedisError(code: .connectionBroken, message: "protocol error: \(text)", context: configuration.endpoint)
        case REDIS_ERR_OOM:
            return RedisError(code: .connectionBroken, message: "out of memory: \(text)", context: configuration.endpoint)
        default:
            return RedisError(code: .connectionBroken, message: text.isEmpty ? "unknown hiredis error \(kind)" : text, context: configuration.endpoint)
        }
    }

    private static func connect(_ configuration: Configuration) throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        guard let context = redisConnectWithTimeout(configuration.host, Int32(configuration.port), configuration.connectTimeout.timeval) else {
            throw RedisError(code: .connectionFailed, message: "out of memory creating the connection", context: configuration.endpoint)
        }
        func fail(_ what: String) -> RedisError {
            let error = RedisError(code: .connectionFailed, message: what + errorText(context), context: configuration.endpoint)
            redisFree(context)
            return error
        }
        if context.pointee.err != 0 {
            throw fail("cannot connect: ")
        }
        if let readTimeout = configuration.readTimeout, redisSetTimeout(context, readTimeout.timeval) != REDIS_OK {
            throw fail("cannot set the read timeout: ")
        }
        if configuration.keepAlive, redisEnableKeepAlive(context) != REDIS_OK {
            throw fail("cannot enable keepalive: ")
        }
        return context
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func chars(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafePointer<CChar>? {
        bytes.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
    }
}

// MARK: - Test hooks

extension RedisConnection {
    /// The socket's `SO_KEEPALIVE`; nil when not open. For tests.
    var socketKeepAlive: Bool? {
        guard case .open(let context) = state else { return nil }
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(context.pointee.fd, SOL_SOCKET, SO_KEEPALIVE, &value, &length) == 0 else { return nil }
        return value != 0
    }

    /// The socket's `SO_RCVTIMEO` (zero: none); nil when not open. For tests.
    var socketReadTimeout: Duration? {
        guard case .open(let context) = state else { return nil }
        var value = timeval()
        var length = socklen_t(MemoryLayout<timeval>.size)
        guard getsockopt(context.pointee.fd, SOL_SOCKET, SO_RCVTIMEO, &value, &length) == 0 else { return nil }
        return .seconds(value.tv_sec) + .microseconds(value.tv_usec)
    }
}

extension RedisError {
    /// The same error, naming the command it happened to.
    func naming(_ command: String) -> RedisError {
        RedisError(code: code, message: message, context: context, command: command)
    }
}
