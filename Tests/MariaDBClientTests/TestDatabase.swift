import MariaDBClient
import TestSupport

/// A fresh database on the shared server and a connection to it (TCP),
/// closed when `body` returns. Tests isolate themselves by database, so they
/// can run in parallel on one server.
func withTestDatabase<Result>(
    overSocket: Bool = false, _ body: (MariaDBConnection, _ server: MariaDBServer, _ database: String) throws -> Result
) throws -> Result {
    let server = try MariaDBServer.shared()
    let database = try server.createDatabase()
    let connection = try server.connect(database: database, overSocket: overSocket)
    defer { connection.close() }
    return try body(connection, server, database)
}

/// The distinctive member-data stand-in that must never reach an error text.
let secretMemberData = "secret-member-7f3a9c@example.invalid"
