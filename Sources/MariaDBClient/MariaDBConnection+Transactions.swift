import CMariaDB

extension MariaDBConnection {
    /// Starts a transaction (`START TRANSACTION`). Statements run on this
    /// connection are then committed or rolled back together.
    package func begin() throws {
        try execute("START TRANSACTION")
    }

    /// Commits the current transaction.
    package func commit() throws {
        let mysql = try liveHandle(operation: "commit")
        guard mysql_commit(mysql) == 0 else { throw lastError(operation: "commit") }
    }

    /// Rolls back the current transaction.
    package func rollback() throws {
        let mysql = try liveHandle(operation: "rollback")
        guard mysql_rollback(mysql) == 0 else { throw lastError(operation: "rollback") }
    }

    /// Runs `body` in a transaction: commits when it returns, rolls back when
    /// it throws and rethrows its error.
    ///
    /// A rollback that fails (the connection broke, which rolls the
    /// transaction back on the server anyway) does not replace the body's
    /// error. A failed commit is thrown; the transaction's outcome is then
    /// unknown only if the connection was lost during the commit itself.
    /// Deadlocks and lock wait timeouts surface as errors with
    /// ``MariaDBError/isRetryableTransactionFailure``: running the whole
    /// closure again is the caller's decision.
    package func transaction<Result>(_ body: (MariaDBConnection) throws -> Result) throws -> Result {
        try begin()
        let result: Result
        do {
            result = try body(self)
        } catch {
            try? rollback()
            throw error
        }
        try commit()
        return result
    }
}
