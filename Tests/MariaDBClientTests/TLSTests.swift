import Foundation
import MariaDBClient
import TestSupport
import Testing

@Suite("MySQL URL TLS options (no server)", .offCooperativePool)
struct TLSOptionTests {
    typealias Configuration = MariaDBConnection.Configuration

    @Test("ssl-mode, ssl-ca, ssl-cert and ssl-key parse, print and parse back")
    func parsed() throws {
        let url = "mysql://app:pw@db.example.com/kindred?ssl-mode=verify_identity&ssl-ca=/etc/k%20k/ca.pem&ssl-cert=/c.pem&ssl-key=/k.pem"
        let configuration = try Configuration(url: url)
        #expect(configuration.tls == .init(mode: .verifyIdentity, ca: "/etc/k k/ca.pem", certificate: "/c.pem", key: "/k.pem"))
        #expect(try Configuration(url: configuration.url) == configuration)
        #expect(configuration.redactedURL.contains("ssl-mode=VERIFY_IDENTITY") && !configuration.redactedURL.contains("pw"))
        #expect(try Configuration(url: "mysql://a:b@h/d?ssl-mode=REQUIRED").tls == .init(mode: .required))
        #expect(try Configuration(url: "mysql://a:b@h/d?ssl-mode=DISABLED").tls == .init(mode: .disabled))
        #expect(try Configuration(url: "mysql://a:b@h/d").tls == nil)
    }

    @Test("wrong or contradictory TLS options are refused, naming the option", arguments: [
        ("ssl_mode=REQUIRED", "unknown query item 'ssl_mode'"),
        ("ssl-verify=1", "unknown query item 'ssl-verify'"),
        ("ssl-mode=PREFERRED", "ssl-mode must be DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"),
        ("ssl-mode=VERIFY_CA", "ssl-mode=VERIFY_CA needs ssl-ca"),
        ("ssl-mode=VERIFY_IDENTITY", "ssl-mode=VERIFY_IDENTITY needs ssl-ca"),
        ("ssl-ca=/ca.pem", "ssl-ca needs ssl-mode="),
        ("ssl-mode=REQUIRED&ssl-ca=/ca.pem", "say ssl-mode=VERIFY_CA"),
        ("ssl-mode=DISABLED&ssl-cert=/c.pem", "ssl-cert given with ssl-mode=DISABLED"),
        ("ssl-mode=REQUIRED&ssl-cert=/c.pem", "ssl-cert and ssl-key go together"),
        ("ssl-mode=VERIFY_CA&ssl-ca=", "empty ssl-ca path"),
    ])
    func refused(_ query: String, _ reason: String) {
        let error = #expect(throws: MariaDBError.self) { try Configuration(url: "mysql://app:secret-pw@h/d?" + query) }
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
        #expect(error.map { "\($0)" }?.contains("secret-pw") == false)
    }
}

/// One mariadbd with TLS and `require_secure_transport=ON` for the suite.
private let tlsServer: Result<(MariaDBServer, TestCertificates), any Error> = Result {
    let certificates = try TestCertificates()
    let server = try MariaDBServer.start(extraArguments: certificates.mariadbArguments + ["--require-secure-transport=ON"])
    return (server, certificates)
}

@Suite("MySQL over TLS against a real mariadbd that requires it", .offCooperativePool)
struct TLSConnectionTests {
    func configuration(_ tls: MariaDBConnection.Configuration.TLS?, host: String = "127.0.0.1") throws -> MariaDBConnection.Configuration {
        let (server, _) = try tlsServer.get()
        var configuration = server.configuration()
        configuration.endpoint = .tcp(host: host, port: Int(server.port))
        configuration.tls = tls
        return configuration
    }

    /// The session's cipher, as the server sees it (empty without TLS).
    func cipher(_ connection: MariaDBConnection) throws -> String {
        try connection.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'").first?.string(1) ?? ""
    }

    @Test("REQUIRED, VERIFY_CA (the right CA) and VERIFY_IDENTITY (127.0.0.1 is in the certificate) connect encrypted")
    func goodModes() throws {
        let (_, certificates) = try tlsServer.get()
        for tls in [
            MariaDBConnection.Configuration.TLS(mode: .required),
            .init(mode: .verifyCA, ca: certificates.caCertificate),
            .init(mode: .verifyIdentity, ca: certificates.caCertificate),
            .init(mode: .verifyCA, ca: certificates.caCertificate, certificate: certificates.clientCertificate, key: certificates.clientKey),
        ] {
            let connection = try MariaDBConnection(configuration: configuration(tls))
            defer { connection.close() }
            #expect(try !cipher(connection).isEmpty, "\(tls.mode) is encrypted")
        }
        // The URL form reaches the same options.
        let url = try configuration(.init(mode: .verifyCA, ca: certificates.caCertificate)).url
        #expect(url.contains("ssl-mode=VERIFY_CA&ssl-ca="))
        let connection = try MariaDBConnection(url: url)
        defer { connection.close() }
        #expect(try !cipher(connection).isEmpty)
    }

    @Test("a CA that did not sign the server's certificate is a clear connection failure")
    func wrongCA() throws {
        let (_, certificates) = try tlsServer.get()
        for mode in [MariaDBConnection.Configuration.TLS.Mode.verifyCA, .verifyIdentity] {
            let error = #expect(throws: MariaDBError.self) {
                try MariaDBConnection(configuration: configuration(.init(mode: mode, ca: certificates.otherCACertificate)))
            }
            #expect(error?.operation == "connect")
            #expect(error?.message.localizedCaseInsensitiveContains("certificate") == true || error?.message.contains("SSL") == true,
                    "\(error.map { "\($0)" } ?? "")")
            #expect(error.map { "\($0)" }?.contains(try tlsServer.get().0.password) == false)
            #expect(error?.message.contains("if the server requires secure transport") == false, "TLS was on: no hint")
        }
    }

    @Test("VERIFY_IDENTITY refuses a host name the certificate does not hold; VERIFY_CA does not check the name")
    func identity() throws {
        let (_, certificates) = try tlsServer.get()
        // The certificate names 127.0.0.1 only; "localhost" reaches the same server.
        let byName = try MariaDBConnection(configuration: configuration(.init(mode: .verifyCA, ca: certificates.caCertificate), host: "localhost"))
        byName.close()
        let error = #expect(throws: MariaDBError.self) {
            try MariaDBConnection(configuration: configuration(.init(mode: .verifyIdentity, ca: certificates.caCertificate), host: "localhost"))
        }
        #expect(error?.operation == "connect", "\(error.map { "\($0)" } ?? "")")
        #expect(error?.message.localizedCaseInsensitiveContains("certificate") == true || error?.message.contains("SSL") == true
            || error?.message.contains("TLS") == true, "\(error.map { "\($0)" } ?? "")")
    }

    @Test("without TLS the server refuses the login (require_secure_transport)")
    func plainRefused() throws {
        for tls in [nil, MariaDBConnection.Configuration.TLS(mode: .disabled)] {
            let error = #expect(throws: MariaDBError.self) { try MariaDBConnection(configuration: configuration(tls)) }
            #expect(error?.code == .accessDenied)
            #expect(error?.message.contains("if the server requires secure transport, add ?ssl-mode=VERIFY_CA") == true,
                    "\(error.map { "\($0)" } ?? "")")
        }
    }
}

/// libmariadb 3.3 ignores MYSQL_OPT_SSL_ENFORCE unless the server's name is
/// verified too: without the connection's own check, REQUIRED and VERIFY_CA
/// logged in over plain text to a server offering no TLS.
@Suite("ssl-mode against a mariadbd that offers no TLS", .offCooperativePool)
struct TLSMissingTests {
    typealias TLS = MariaDBConnection.Configuration.TLS

    static func cipher(_ connection: MariaDBConnection) throws -> String {
        try connection.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'").first?.string(1) ?? ""
    }

    static func expectRefused(_ error: MariaDBError?, mode: TLS.Mode, server: MariaDBServer) {
        #expect(error?.message == "the server at 127.0.0.1:\(server.port) did not use TLS although ssl-mode=\(mode.rawValue)",
                "\(error.map { "\($0)" } ?? "no error")")
        #expect(error?.errorNumber == 2026 && error?.operation == "connect")
        #expect(error?.isConnectionLost == false, "a missing TLS is not a transient failure to retry")
        #expect(error.map { "\($0)" }?.contains(server.password) == false)
    }

    @Test("REQUIRED and VERIFY_CA are refused with a clear error; DISABLED (and no TLS setting) connect")
    func refused() throws {
        let server = try MariaDBServer.shared()
        let certificates = try TestCertificates()
        let root = try server.connect(overSocket: true)
        defer { root.close() }
        // Started without any ssl option: the server has no TLS to offer.
        let haveSSL = try root.query("SHOW GLOBAL VARIABLES LIKE 'have_ssl'").first?.string(1)
        #expect(haveSSL != "YES", "have_ssl=\(haveSSL ?? "?")")
        for tls in [TLS(mode: .required), TLS(mode: .verifyCA, ca: certificates.caCertificate)] {
            var configuration = server.configuration()
            configuration.tls = tls
            let error = #expect(throws: MariaDBError.self) { try MariaDBConnection(configuration: configuration) }
            Self.expectRefused(error, mode: tls.mode, server: server)
            // The URL form (what KINDRED_MYSQL holds) takes the same path.
            #expect(throws: MariaDBError.self) { try MariaDBConnection(url: configuration.url) }
        }
        for tls in [TLS(mode: .disabled), nil] {
            var configuration = server.configuration()
            configuration.tls = tls
            let connection = try MariaDBConnection(configuration: configuration)
            defer { connection.close() }
            #expect(try Self.cipher(connection).isEmpty)
        }
    }

    @Test("a reconnect to a server that stopped offering TLS is refused and leaves the connection disconnected")
    func reconnectRefused() throws {
        let certificates = try TestCertificates()
        let server = try MariaDBServer.start(extraArguments: certificates.mariadbArguments)
        var connections: [(TLS.Mode, MariaDBConnection)] = []
        defer { for (_, connection) in connections { connection.close() } }
        for tls in [TLS(mode: .required), TLS(mode: .verifyCA, ca: certificates.caCertificate)] {
            var configuration = server.configuration()
            configuration.tls = tls
            let connection = try MariaDBConnection(configuration: configuration)
            connections.append((tls.mode, connection))
            #expect(try !Self.cipher(connection).isEmpty, "\(tls.mode) is encrypted")
        }

        try server.restart(extraArguments: [])
        for (mode, connection) in connections {
            let error = #expect(throws: MariaDBError.self) { try connection.reconnect() }
            Self.expectRefused(error, mode: mode, server: server)
            let after = #expect(throws: MariaDBError.self) { try connection.ping() }
            #expect(after?.message.contains("not connected") == true, "no plain-text session was kept")
        }

        try server.restart(extraArguments: certificates.mariadbArguments)
        for (mode, connection) in connections {
            try connection.reconnect()
            #expect(try !Self.cipher(connection).isEmpty, "\(mode) is encrypted again")
        }
    }
}
