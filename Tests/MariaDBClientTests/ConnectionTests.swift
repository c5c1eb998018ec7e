import MariaDBClient
import TestSupport
import Testing

@Suite("Connecting", .offCooperativePool)
struct ConnectionTests {
    @Test func connectsOverTCPWithURL() throws {
        let server = try MariaDBServer.shared()
        let database = try server.createDatabase()
        let connection = try MariaDBConnection(url: server.url(database: database))
        defer { connection.close() }
        let row = try #require(try connection.query("SELECT DATABASE(), @@character_set_client, USER()").first)
        #expect(row.string(0) == database)
        #expect(row.string(1) == "utf8mb4")
        #expect(row.string(2)?.hasPrefix("kindred@127.0.0.1") == true, "TCP login matches the @'127.0.0.1' account")
        #expect(connection.connectionID > 0)
        #expect(connection.serverVersion.contains("MariaDB"))
        try connection.ping()
    }

    @Test func connectsOverUnixSocketWithURL() throws {
        let server = try MariaDBServer.shared()
        let database = try server.createDatabase()
        let url = server.url(database: database, overSocket: true)
        #expect(url.contains("socket="))
        let connection = try MariaDBConnection(url: url)
        defer { connection.close() }
        let row = try #require(try connection.query("SELECT DATABASE(), USER()").first)
        #expect(row.string(0) == database)
        #expect(row.string(1)?.hasPrefix("kindred@localhost") == true, "socket login matches the @'localhost' account")
    }

    @Test func wrongPasswordIsAccessDeniedWithoutThePassword() throws {
        let server = try MariaDBServer.shared()
        var configuration = server.configuration()
        let wrongPassword = "wrong-\(secretMemberData)"
        configuration.password = wrongPassword
        let error = try #require(throws: MariaDBError.self) {
            try MariaDBConnection(configuration: configuration)
        }
        #expect(error.code == .accessDenied)
        #expect(error.errorNumber == 1045)
        #expect(error.sqlState == "28000")
        #expect(!error.isConnectionLost)
        #expect(!error.description.contains(wrongPassword))
        #expect(!error.description.contains(server.password))
        #expect(!String(reflecting: error).contains(wrongPassword))
        #expect(error.message.contains("Access denied for user 'kindred'"))
    }

    @Test func refusedConnectionIsConnectionLostStyle() throws {
        let port = try freeLoopbackPort()  // nothing listens there
        let configuration = MariaDBConnection.Configuration(
            host: "127.0.0.1", port: Int(port), user: "kindred", password: "x", connectTimeout: .seconds(2))
        let error = try #require(throws: MariaDBError.self) {
            try MariaDBConnection(configuration: configuration)
        }
        #expect(error.code == .connectionFailed)
        #expect(error.isConnectionLost)
        #expect([2002, 2003].contains(error.errorNumber))
    }

    @Test func unknownDatabaseIsAServerError() throws {
        let server = try MariaDBServer.shared()
        let error = try #require(throws: MariaDBError.self) {
            try server.connect(database: "no_such_database_here")
        }
        #expect(error.errorNumber == 1049)
        #expect(error.code == .server)
    }
}
