import CMariaDB

/// One synchronous connection to MariaDB or MySQL over libmariadb
/// (Connector/C 3.3).
///
/// Ownership and threads: the connection owns one `MYSQL *` and the prepared
/// statements made on it. It is not `Sendable`: one caller, on one thread,
/// uses it at a time (hand it over whole, with `sending`, if needed). Every
/// call blocks that thread for a network round trip, so give the connection a
/// thread of its own rather than a task on Swift's cooperative pool.
///
/// Lifecycle: `init` connects (or throws); ``close()`` disconnects for good
/// and any later use is a precondition failure; `deinit` closes if `close()`
/// was not called. When a call throws an error whose
/// ``MariaDBError/isConnectionLost`` is true, the connection is broken:
/// ``reconnect()`` opens a new session with the same configuration, and
/// cached statements prepare themselves again on first use. Session state
/// (an open transaction, `SET` variables, temporary tables) does not survive.
///
/// Writing member data: use prepared statements (``prepare(_:)``,
/// ``execute(_:_:)``, ``query(_:_:)``), which send values as bound
/// parameters. ``execute(_:)`` without parameters is for DDL and fixed SQL.
///
/// Cost: statements are cached by SQL text for the connection's lifetime, one
/// server-side statement each (the server caps them at
/// `max_prepared_stmt_count`, 16382 by default, across all sessions), so
/// build SQL from a fixed set of shapes and never splice values into it.
package final class MariaDBConnection {
    package let configuration: Configuration
    private var mysql: UnsafeMutablePointer<MYSQL>?
    private var isClosed = false
    private var statements: [String: Statement] = [:]
    /// True while ``Statement/forEachRow(_:_:)`` has an unread result on the wire.
    var isStreaming = false

    /// Connects to the server described by `configuration`.
    package init(configuration: Configuration) throws {
        MariaDBLibrary.initializeOnce()
        self.configuration = configuration
        self.mysql = try Self.connect(configuration)
    }

    /// Connects to the server described by a `mysql://` URL.
    package convenience init(url: String) throws {
        try self.init(configuration: Configuration(url: url))
    }

    deinit {
        releaseHandles()
    }

    /// Disconnects. The connection and its statements cannot be used afterwards.
    package func close() {
        precondition(!isStreaming, "MariaDBClient: close() called while forEachRow is streaming")
        guard !isClosed else { return }
        isClosed = true
        releaseHandles()
        statements.removeAll()
    }

    /// Opens a new session with the same configuration, replacing the current
    /// one (broken or not). Cached statements stay in the cache and are
    /// prepared again on their next use. If connecting fails the error is
    /// thrown and the connection stays disconnected: every call throws a
    /// connection-lost error until a `reconnect()` succeeds.
    package func reconnect() throws {
        precondition(!isClosed, "MariaDBClient: reconnect() called after close()")
        precondition(!isStreaming, "MariaDBClient: reconnect() called while forEachRow is streaming")
        releaseHandles()
        mysql = try Self.connect(configuration)
    }

    /// Checks the session with a round trip (`mysql_ping`); throws when it is broken.
    package func ping() throws {
        let mysql = try liveHandle(operation: "ping")
        guard mysql_ping(mysql) == 0 else { throw lastError(operation: "ping") }
    }

    /// The server's connection id for this session (`CONNECTION_ID()`).
    package var connectionID: UInt64 {
        guard let mysql = try? liveHandle(operation: "connectionID") else { return 0 }
        return UInt64(mysql_thread_id(mysql))
    }

    /// The server's version string, e.g. `10.11.6-MariaDB-0+deb12u1`.
    package var serverVersion: String {
        guard let mysql = try? liveHandle(operation: "serverVersion"), let text = mysql_get_server_info(mysql) else {
            return ""
        }
        return String(cString: text)
    }

    /// The number of prepared statements in the cache.
    package var cachedStatementCount: Int { statements.count }

    // MARK: - Statements

    /// Runs SQL that takes no parameters (DDL, `SET`, fixed statements) as a
    /// text query and discards any rows. Never splice member data into `sql`:
    /// use ``execute(_:_:)`` for values. Errors carry no SQL text.
    @discardableResult
    package func execute(_ sql: String) throws -> ExecutionResult {
        let mysql = try liveHandle(operation: "execute")
        let status = sql.withCString { mysql_real_query(mysql, $0, UInt(sql.utf8.count)) }
        guard status == 0 else { throw lastError(operation: "execute") }
        if mysql_field_count(mysql) > 0, let result = mysql_use_result(mysql) {
            mysql_free_result(result)  // reads and drops the rows
        }
        let affected = mysql_affected_rows(mysql)
        return ExecutionResult(affectedRows: affected == UInt64.max ? 0 : affected, lastInsertID: mysql_insert_id(mysql))
    }

    /// The cached statement for `sql`, prepared on first request.
    package func prepare(_ sql: String) throws -> Statement {
        if let statement = statements[sql] {
            _ = try liveHandle(operation: "prepare")
            return statement
        }
        let statement = try Statement(sql: sql, connection: self)
        statements[sql] = statement
        return statement
    }

    /// Executes `sql` as a cached prepared statement with `parameters` bound.
    @discardableResult
    package func execute(_ sql: String, _ parameters: [SQLValue]) throws -> ExecutionResult {
        try prepare(sql).execute(parameters)
    }

    /// Runs `sql` as a cached prepared statement and returns every row, copied.
    package func query(_ sql: String, _ parameters: [SQLValue] = []) throws -> [Row] {
        try prepare(sql).query(parameters)
    }

    /// Runs `sql` as a cached prepared statement and streams its rows; see
    /// ``Statement/forEachRow(_:_:)``.
    package func forEachRow(_ sql: String, _ parameters: [SQLValue] = [], _ body: (RowView) throws -> Void) throws {
        try prepare(sql).forEachRow(parameters, body)
    }

    // MARK: - Internals

    /// The live handle, after the misuse checks every operation makes.
    func liveHandle(operation: String) throws -> UnsafeMutablePointer<MYSQL> {
        precondition(!isClosed, "MariaDBClient: connection used after close()")
        precondition(!isStreaming, "MariaDBClient: connection used while forEachRow is streaming a result on it")
        guard let mysql else {
            throw MariaDBError(
                code: .connectionLost, errorNumber: 2006,
                message: "not connected: the last reconnect() failed", operation: operation)
        }
        return mysql
    }

    /// The error libmariadb recorded on the connection handle.
    func lastError(operation: String, sql: String? = nil) -> MariaDBError {
        guard let mysql else {
            return MariaDBError(code: .connectionLost, errorNumber: 2006, message: "not connected", operation: operation)
        }
        return Self.error(of: mysql, operation: operation, sql: sql)
    }

    /// Closes the `MYSQL *` first, which detaches its statements (libmariadb
    /// clears their back pointer), then frees the statements without network
    /// traffic: closing them on a dead connection could not reach the server,
    /// and on a live one the server drops them with the session anyway.
    private func releaseHandles() {
        if let mysql { mysql_close(mysql) }
        mysql = nil
        for statement in statements.values { statement.releaseHandle() }
    }

    private static func error(
        of mysql: UnsafeMutablePointer<MYSQL>, operation: String, sql: String? = nil
    ) -> MariaDBError {
        let number = mysql_errno(mysql)
        guard number != 0 else {
            return MariaDBError(
                errorNumber: 2000, sqlState: "HY000",
                message: "libmariadb reported a failure without an error code", operation: operation, sql: sql)
        }
        return MariaDBError(
            errorNumber: number,
            sqlState: String(cString: mysql_sqlstate(mysql)),
            message: String(cString: mysql_error(mysql)),
            operation: operation,
            sql: sql)
    }

    private static func connect(_ configuration: Configuration) throws -> UnsafeMutablePointer<MYSQL> {
        guard let mysql = mysql_init(nil) else {
            throw MariaDBError(code: .client, errorNumber: 2008, message: "mysql_init: out of memory", operation: "connect")
        }
        var connectTimeout = Configuration.wholeSeconds(configuration.connectTimeout)
        var readTimeout = Configuration.wholeSeconds(configuration.readTimeout)
        var writeTimeout = Configuration.wholeSeconds(configuration.writeTimeout)
        var noTruncationReports: Int8 = 0  // see ResultBindings: lengths report truncation instead
        var noAutomaticReconnect: Int8 = 0  // a silent reconnect would lose transactions unnoticed
        var protocolType: UInt32
        var host: String?
        var port: UInt32 = 0
        var socketPath: String?
        switch configuration.endpoint {
        case .tcp(let tcpHost, let tcpPort):
            protocolType = MYSQL_PROTOCOL_TCP.rawValue
            host = tcpHost
            port = UInt32(clamping: tcpPort)
        case .unixSocket(let path):
            protocolType = MYSQL_PROTOCOL_SOCKET.rawValue
            host = "localhost"
            socketPath = path
        }
        var failed = false
        failed = failed || mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connectTimeout) != 0
        failed = failed || mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &readTimeout) != 0
        failed = failed || mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &writeTimeout) != 0
        failed = failed || mysql_options(mysql, MYSQL_OPT_PROTOCOL, &protocolType) != 0
        failed = failed || mysql_options(mysql, MYSQL_REPORT_DATA_TRUNCATION, &noTruncationReports) != 0
        failed = failed || mysql_options(mysql, MYSQL_OPT_RECONNECT, &noAutomaticReconnect) != 0
        failed = failed || mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0
        if let tls = configuration.tls, tls.mode != .disabled {
            var enforce: Int8 = 1
            var verifyIdentity: Int8 = tls.mode == .verifyIdentity ? 1 : 0
            failed = failed || mysql_options(mysql, MYSQL_OPT_SSL_ENFORCE, &enforce) != 0
            failed = failed || mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verifyIdentity) != 0
            if let ca = tls.ca { failed = failed || mysql_options(mysql, MYSQL_OPT_SSL_CA, ca) != 0 }
            if let certificate = tls.certificate { failed = failed || mysql_options(mysql, MYSQL_OPT_SSL_CERT, certificate) != 0 }
            if let key = tls.key { failed = failed || mysql_options(mysql, MYSQL_OPT_SSL_KEY, key) != 0 }
        }
        if failed {
            mysql_close(mysql)
            throw MariaDBError(
                code: .client, message: "mysql_options rejected a connection option", operation: "connect")
        }

        let connected = withOptionalCString(host) { hostPointer in
            withOptionalCString(socketPath) { socketPointer in
                withOptionalCString(configuration.database) { databasePointer in
                    mysql_real_connect(
                        mysql, hostPointer, configuration.user, configuration.password, databasePointer, port,
                        socketPointer, 0)
                }
            }
        }
        guard connected != nil else {
            var failure = error(of: mysql, operation: "connect")
            mysql_close(mysql)
            if failure.errorNumber == 1045, (configuration.tls?.mode ?? .disabled) == .disabled {
                // MariaDB answers a plain-text login to a server with
                // require_secure_transport=ON with a bare "access denied".
                failure = MariaDBError(
                    errorNumber: failure.errorNumber, sqlState: failure.sqlState,
                    message: failure.message + MariaDBError.plainTextLoginHint,
                    operation: failure.operation)
            }
            throw failure
        }
        if let tls = configuration.tls, tls.mode != .disabled, mysql_get_ssl_cipher(mysql) == nil {
            // libmariadb 3.3 honours MYSQL_OPT_SSL_ENFORCE only together with
            // MYSQL_OPT_SSL_VERIFY_SERVER_CERT: with REQUIRED or VERIFY_CA it
            // logs in over plain text when the server offers no TLS (or
            // someone on the path strips the offer). The session is refused
            // here instead, before any statement is sent.
            mysql_close(mysql)
            throw MariaDBError(
                errorNumber: 2026, sqlState: "HY000",
                message: "the server at \(configuration.endpointDescription) did not use TLS although ssl-mode=\(tls.mode.rawValue)",
                operation: "connect")
        }
        return mysql
    }
}

@available(*, unavailable, message: "a MariaDBConnection is used by one thread at a time; transfer it with `sending`")
extension MariaDBConnection: Sendable {}

private func withOptionalCString<Result>(
    _ string: String?, _ body: (UnsafePointer<CChar>?) -> Result
) -> Result {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}

/// libmariadb's process-wide initialisation.
enum MariaDBLibrary {
    /// `mysql_library_init` is a macro Swift cannot call; it expands to
    /// `mysql_server_init(0, NULL, NULL)`, which is not safe to race.
    /// Swift runs a static's initialiser exactly once, thread-safely, so every
    /// connection goes through this before `mysql_init` (which would
    /// otherwise initialise the library itself, unguarded).
    private static let initialized: Bool = mysql_server_init(0, nil, nil) == 0

    static func initializeOnce() {
        precondition(initialized, "MariaDBClient: mysql_server_init failed")
    }
}
