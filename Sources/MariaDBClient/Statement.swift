import CMariaDB

/// The outcome of a statement that changes data.
package struct ExecutionResult: Sendable, Hashable {
    /// Rows inserted, deleted or changed (an UPDATE that sets a row to the
    /// values it already holds does not count it). 0 for statements that
    /// return rows.
    package var affectedRows: UInt64
    /// The first AUTO_INCREMENT value this statement generated, or 0.
    package var lastInsertID: UInt64

    package init(affectedRows: UInt64, lastInsertID: UInt64) {
        self.affectedRows = affectedRows
        self.lastInsertID = lastInsertID
    }
}

/// A server-side prepared statement, owned by its connection's statement
/// cache and obtained with ``MariaDBConnection/prepare(_:)``.
///
/// Values travel as bound parameters in the binary protocol, never spliced
/// into SQL text. Executing again costs one round trip: no parsing, no
/// re-preparation.
///
/// Invariants:
/// - The statement is used on its connection's thread only, and the
///   connection must outlive it (it holds the connection `unowned`).
/// - Its `MYSQL_STMT` belongs to the connection's current `MYSQL` handle.
///   ``MariaDBConnection/reconnect()`` releases it and the statement prepares
///   itself again, lazily, on its next use.
/// - Parameter buffers stay alive from binding until `mysql_stmt_execute`
///   returns; result buffers until the next fetch.
package final class Statement {
    /// The SQL text, with `?` placeholders.
    package let sql: String
    unowned let connection: MariaDBConnection
    private var handle: UnsafeMutablePointer<MYSQL_STMT>?
    private let parameters = ParameterBindings(count: 0)
    private var results: ResultBindings?

    /// The number of `?` placeholders.
    package private(set) var parameterCount = 0

    /// The names of the result columns (empty for statements without rows).
    package var columnNames: [String] { results?.names ?? [] }

    /// Prepares `sql` on the connection's current handle.
    init(sql: String, connection: MariaDBConnection) throws {
        self.sql = sql
        self.connection = connection
        try prepare()
    }

    deinit {
        if let handle { mysql_stmt_close(handle) }
    }

    /// Executes the statement and discards any rows it returns.
    @discardableResult
    package func execute(_ parameters: [SQLValue] = []) throws -> ExecutionResult {
        try execute(parameters: parameters)
    }

    /// Executes the statement and returns every row, copied.
    ///
    /// Memory grows with the result; use ``forEachRow(_:_:)`` for large ones.
    package func query(_ parameters: [SQLValue] = []) throws -> [Row] {
        var rows: [Row] = []
        try forEachRow(parameters) { rows.append($0.copy()) }
        return rows
    }

    /// Executes the statement and calls `body` for each row as it arrives
    /// from the server (an unbuffered fetch: memory stays flat whatever the
    /// row count).
    ///
    /// The connection is busy until this returns: using it from `body` is a
    /// precondition failure. When `body` throws, the remaining rows are read
    /// and discarded before the error propagates (the protocol has no way to
    /// cancel a result set), so stopping early on a huge result still costs
    /// the transfer. A slow `body` holds the server's send buffer:
    /// `net_write_timeout` (60 s by default) bounds how long the server waits
    /// for one write to drain.
    package func forEachRow(_ parameters: [SQLValue] = [], _ body: (RowView) throws -> Void) throws {
        let statement = try run(parameters, operation: "execute")
        guard mysql_stmt_field_count(statement) > 0 else { return }
        let bindings = try resultBindings(for: statement)

        connection.isStreaming = true
        var drained = false
        defer {
            bindings.generation.pointee &+= 1  // invalidates the last view
            if !drained { mysql_stmt_free_result(statement) }  // reads and drops the rest
            bindings.shrinkLargeBuffers()
            connection.isStreaming = false
        }
        while true {
            let status = mysql_stmt_fetch(statement)
            if status == MYSQL_NO_DATA {
                drained = true
                return
            }
            guard status == 0 || status == MYSQL_DATA_TRUNCATED else {
                drained = true  // a failed fetch leaves nothing to read
                throw error(statement, operation: "fetch")
            }
            guard bindings.completeTruncatedColumns(statement) else {
                throw error(statement, operation: "fetch")
            }
            bindings.generation.pointee &+= 1
            try body(RowView(bindings: bindings, generation: bindings.generation.pointee))
        }
    }

    // MARK: - Internals used by the connection

    func execute<Values: Collection<SQLValue>>(parameters values: Values) throws -> ExecutionResult {
        let statement = try run(values, operation: "execute")
        let affected = mysql_stmt_affected_rows(statement)
        let result = ExecutionResult(
            affectedRows: affected == UInt64.max ? 0 : affected, lastInsertID: mysql_stmt_insert_id(statement))
        if mysql_stmt_field_count(statement) > 0 {
            mysql_stmt_free_result(statement)
        }
        return result
    }

    /// Frees the `MYSQL_STMT`. Called by the connection after `mysql_close`
    /// of the handle it belonged to, which detached it: closing it then only
    /// frees client memory (the server dropped the statement with the session).
    func releaseHandle() {
        if let handle { mysql_stmt_close(handle) }
        handle = nil
    }

    // MARK: - Preparing and executing

    private func prepare() throws {
        let mysql = try connection.liveHandle(operation: "prepare")
        guard let statement = mysql_stmt_init(mysql) else {
            throw connection.lastError(operation: "prepare", sql: sql)
        }
        let status = sql.withCString { mysql_stmt_prepare(statement, $0, UInt(sql.utf8.count)) }
        guard status == 0 else {
            let failure = error(statement, operation: "prepare")
            mysql_stmt_close(statement)
            throw failure
        }
        handle = statement
        parameterCount = Int(mysql_stmt_param_count(statement))
        parameters.resize(to: parameterCount)
        results = nil
        if mysql_stmt_field_count(statement) > 0 {
            _ = try resultBindings(for: statement)
        }
    }

    /// Binds `values` and executes; returns the handle, ready for fetching.
    private func run<Values: Collection<SQLValue>>(
        _ values: Values, operation: String
    ) throws -> UnsafeMutablePointer<MYSQL_STMT> {
        _ = try connection.liveHandle(operation: operation)
        if handle == nil { try prepare() }
        guard let statement = handle else { preconditionFailure("prepare() left no handle") }
        precondition(
            values.count == parameterCount,
            "MariaDBClient: statement takes \(parameterCount) parameters, \(values.count) given")

        if parameterCount > 0 {
            parameters.bind(values)
            guard mysql_stmt_bind_param(statement, parameters.binds) == 0 else {
                throw error(statement, operation: "bind")
            }
        }
        let status = mysql_stmt_execute(statement)
        parameters.releaseLargeStorage()
        guard status == 0 else {
            let failure = error(statement, operation: operation)
            if failure.errorNumber == 2057 {  // CR_NEW_STMT_METADATA: the table changed shape
                releaseHandle()
            }
            throw failure
        }
        return statement
    }

    /// Bindings matching the columns of the current execution, bound to the
    /// handle. The server may report new column types on execute (`SELECT ?`
    /// takes its type from the parameter), so the layout is compared each time.
    private func resultBindings(for statement: UnsafeMutablePointer<MYSQL_STMT>) throws -> ResultBindings {
        let count = Int(statement.pointee.field_count)
        guard let fields = statement.pointee.fields else {
            throw MariaDBError(code: .client, message: "result has no column metadata", operation: "fetch")
        }
        let bindings: ResultBindings
        if let current = results, current.count == count,
            current.layout == ResultBindings.layout(of: fields, count: count)
        {
            bindings = current
        } else {
            bindings = ResultBindings(fields: fields, count: count)
            results = bindings
        }
        guard mysql_stmt_bind_result(statement, bindings.binds) == 0 else {
            throw error(statement, operation: "bind result")
        }
        return bindings
    }

    /// The error recorded on the statement, or on the connection when the
    /// statement has none: an unbuffered `mysql_stmt_fetch` that loses the
    /// connection returns 1 but records 2013 only on the `MYSQL` handle.
    private func error(_ statement: UnsafeMutablePointer<MYSQL_STMT>, operation: String) -> MariaDBError {
        guard mysql_stmt_errno(statement) != 0 else {
            return connection.lastError(operation: operation, sql: sql)
        }
        return MariaDBError(
            errorNumber: mysql_stmt_errno(statement),
            sqlState: String(cString: mysql_stmt_sqlstate(statement)),
            message: String(cString: mysql_stmt_error(statement)),
            operation: operation,
            sql: sql)
    }
}

@available(*, unavailable, message: "a Statement belongs to one connection, used on one thread")
extension Statement: Sendable {}
