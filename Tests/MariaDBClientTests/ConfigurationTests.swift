import Testing
import TestSupport

@testable import MariaDBClient

@Suite("Configuration and URL parsing (no server)", .offCooperativePool)
struct ConfigurationTests {
    @Test func parsesTCPURLWithPercentEncodedPassword() throws {
        let configuration = try MariaDBConnection.Configuration(url: "mysql://app:p%40ss%3Aw%2Frd%25x@127.0.0.1:3307/kindred")
        #expect(configuration.endpoint == .tcp(host: "127.0.0.1", port: 3307))
        #expect(configuration.user == "app")
        #expect(configuration.password == "p@ss:w/rd%x")
        #expect(configuration.database == "kindred")
        #expect(configuration.connectTimeout == .seconds(5))
        #expect(configuration.readTimeout == .seconds(60))
    }

    @Test func parsesSocketURLAndTimeouts() throws {
        let configuration = try MariaDBConnection.Configuration(
            url: "mysql://app:pw@localhost/db?socket=/run/my%20sql/my.sock&read_timeout=3&connect_timeout=2")
        #expect(configuration.endpoint == .unixSocket(path: "/run/my sql/my.sock"))
        #expect(configuration.database == "db")
        #expect(configuration.readTimeout == .seconds(3))
        #expect(configuration.connectTimeout == .seconds(2))
        #expect(configuration.writeTimeout == .seconds(60))
    }

    @Test func defaultsPortAndAcceptsIPv6AndNoDatabase() throws {
        let plain = try MariaDBConnection.Configuration(url: "mariadb://app@db.internal")
        #expect(plain.endpoint == .tcp(host: "db.internal", port: 3306))
        #expect(plain.password == "")
        #expect(plain.database == nil)
        let ipv6 = try MariaDBConnection.Configuration(url: "mysql://app:x@[::1]:3310/")
        #expect(ipv6.endpoint == .tcp(host: "::1", port: 3310))
        #expect(ipv6.database == nil)
    }

    @Test func urlRoundTripsThroughParse() throws {
        let original = MariaDBConnection.Configuration(
            host: "127.0.0.1", port: 4000, user: "u@x", password: "a@b:c/d%e#f?g h", database: "d b",
            readTimeout: .milliseconds(1500))
        let parsed = try MariaDBConnection.Configuration(url: original.url)
        #expect(parsed.password == original.password)
        #expect(parsed.user == original.user)
        #expect(parsed.database == original.database)
        #expect(parsed.endpoint == original.endpoint)
        #expect(parsed.readTimeout == .seconds(2), "timeouts are whole seconds, rounded up")
    }

    @Test(arguments: [
        "postgres://u:p@h/db", "mysql://h/db", "mysql://u:p@h:99999/db", "mysql://u:p@h:x/db",
        "mysql://u:p%zz@h/db", "mysql://u:p@h/db?sockett=/x", "mysql://u:p@remote/db?socket=/x",
        "mysql://u:p@h/db?read_timeout=0", "mysql://:p@h/db",
        // Past libmariadb's unsigned int (found by scripts/fuzz mysql-url: it was clamped silently).
        "mysql://u:p@h/db?connect_timeout=6333333333333", "mysql://u:p@h/db?read_timeout=4294967296",
        // A host with a bracket (also found by the fuzzer: it printed as a URL that did not parse).
        "mariadb://u@[[c]:6/", "mysql://u@h]x/db", "mysql://u@h x/db",
    ])
    func rejectsBadURLsWithoutEchoingThem(url: String) {
        #expect {
            try MariaDBConnection.Configuration(url: url)
        } throws: { error in
            guard let error = error as? MariaDBError else { return false }
            return error.code == .invalidConfiguration && !error.description.contains(url)
        }
    }

    @Test("a password with an unencoded ? or / before an '@' is refused without repeating any part of it", arguments: [
        "mysql://u:p@ss?qz7k@127.0.0.1/k",  // printed "unknown query item 'qz7k@127.0.0.1/k'"
        "mysql://u:p@ss/qz7k@127.0.0.1/k",  // was read as host "ss", database "qz7k@127.0.0.1/k"
        "mysql://u:pa?ss%zzqz7k@h/k",  // printed "bad percent-encoding in query item ss%zzqz7k@h/k"
        "mysql://u:pa/ssqz7k@h",
        "mysql://u:pa?ssqz7k=1@h/k",
    ])
    func refusesPasswordSpillingPastTheHost(url: String) {
        let error = #expect(throws: MariaDBError.self) { try MariaDBConnection.Configuration(url: url) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("the password must be percent-encoded (@ ? / # as %40 %3F %2F %23)") == true,
                "\(error?.message ?? "")")
        for piece in ["qz7k", "ss?q", "ss/q", "p@ss", "127.0.0.1"] {
            #expect(error.map { "\($0)" }?.contains(piece) == false, "\(error?.message ?? "")")
        }
    }

    @Test("an '@' in the password before the host is still read as part of it; one in a query value must be encoded")
    func atSignsInPasswordAndQuery() throws {
        let configuration = try MariaDBConnection.Configuration(url: "mysql://u:p@ss@127.0.0.1/k")
        #expect(configuration.password == "p@ss")
        #expect(configuration.endpoint == .tcp(host: "127.0.0.1", port: 3306))
        let socket = try MariaDBConnection.Configuration(url: "mysql://u:pw@localhost/k?socket=/run/a%40b.sock")
        #expect(socket.endpoint == .unixSocket(path: "/run/a@b.sock"))
        #expect(throws: MariaDBError.self) { try MariaDBConnection.Configuration(url: "mysql://u:pw@localhost/k?socket=/run/a@b.sock") }
    }

    @Test("an unknown query item is named; a bad escape in its value does not hide that")
    func unknownQueryItemNamed() {
        let error = #expect(throws: MariaDBError.self) {
            try MariaDBConnection.Configuration(url: "mysql://u:pw@h/k?sslmode=%zz")
        }
        #expect(error?.message.contains("unknown query item 'sslmode'") == true, "\(error?.message ?? "")")
    }

    @Test func descriptionsAndMirrorNeverShowThePassword() throws {
        let password = "hunter2-\(secretMemberData)"
        let configuration = MariaDBConnection.Configuration(
            host: "127.0.0.1", user: "app", password: password, database: "kindred")
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in [
            configuration.description, configuration.debugDescription, String(reflecting: configuration),
            "\(configuration)", configuration.redactedURL, dumped,
        ] {
            #expect(!text.contains("hunter2"), "leaked in: \(text.prefix(200))")
            #expect(text.contains("app"))
        }
        #expect(configuration.url.contains("hunter2"), "url is the one form that carries the password")
    }

    @Test func wholeSecondsRoundUp() {
        typealias Configuration = MariaDBConnection.Configuration
        #expect(Configuration.wholeSeconds(.seconds(3)) == 3)
        #expect(Configuration.wholeSeconds(.milliseconds(1)) == 1)
        #expect(Configuration.wholeSeconds(.milliseconds(2001)) == 3)
        #expect(Configuration.wholeSeconds(.zero) == 0)
    }
}

@Suite("Error redaction and classification (no server)", .offCooperativePool)
struct ErrorRedactionTests {
    @Test func duplicateEntryKeepsKeyNameAndDropsValue() {
        let redacted = MariaDBError.redactValues(
            in: "Duplicate entry 'it's ' for key' for key 'email'", errorNumber: 1062)
        #expect(redacted == "Duplicate entry '<redacted>' for key 'email'")
    }

    @Test func truncatedMessagesAreRedactedToTheEnd() {
        let redacted = MariaDBError.redactValues(in: "Truncated incorrect DOUBLE value: 'abc", errorNumber: 1292)
        #expect(redacted == "Truncated incorrect DOUBLE value: '<redacted>'")
    }

    @Test func messagesWithoutValuesAreKept() {
        let message = "Table 'kindred.members' doesn't exist"
        #expect(MariaDBError.redactValues(in: message, errorNumber: 1146) == message)
    }

    @Test func classifiesRetryableAndConnectionErrors() {
        func error(_ number: UInt32) -> MariaDBError {
            MariaDBError(errorNumber: number, sqlState: "HY000", message: "m", operation: "test")
        }
        for number: UInt32 in [2002, 2003, 2006, 2013, 2055, 1927] {
            #expect(error(number).isConnectionLost, "\(number)")
        }
        #expect(error(1062).isDuplicateKey && error(1586).isDuplicateKey)
        #expect(error(1213).isDeadlock && error(1213).isRetryableTransactionFailure)
        #expect(error(1205).isLockWaitTimeout && error(1205).isRetryableTransactionFailure)
        #expect(!error(1146).isConnectionLost && error(1146).code == .server)
        #expect(error(2014).code == .client)
        #expect(error(1045).code == .accessDenied)
    }
}

@Suite("BatchInsert shapes (no server)", .offCooperativePool)
struct BatchInsertShapeTests {
    @Test func splitsIntoFullStatementsAndPowerOfTwoTail() {
        let batch = BatchInsert("INSERT INTO t (a, b) VALUES", columnsPerRow: 2, maxRowsPerStatement: 1000)
        #expect(batch.statementSizes(rows: 0) == [])
        #expect(batch.statementSizes(rows: 1000) == [1000])
        #expect(batch.statementSizes(rows: 2700) == [1000, 1000, 512, 128, 32, 16, 8, 4])
        #expect(batch.statementSizes(rows: 1) == [1])
        #expect(batch.sql(rows: 2) == "INSERT INTO t (a, b) VALUES (?,?),(?,?)")
    }

    @Test func quotesIdentifiers() {
        let batch = BatchInsert(table: "we`ird", columns: ["a", "b c"], suffix: " ON DUPLICATE KEY UPDATE a = a")
        #expect(batch.sql(rows: 1) == "INSERT INTO `we``ird` (`a`, `b c`) VALUES (?,?) ON DUPLICATE KEY UPDATE a = a")
    }
}
