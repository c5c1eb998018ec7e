import KindredSupport

extension MariaDBConnection {
    /// Where and how to connect: endpoint, credentials, database and timeouts.
    ///
    /// The character set is always utf8mb4. `description`, `debugDescription`
    /// and the reflection mirror (`dump`) all replace the password with `***`,
    /// so a configuration can be logged whole.
    ///
    /// A URL form exists for command lines and environment variables:
    ///
    ///     mysql://user:pass@127.0.0.1:3306/db
    ///     mysql://user:pass@localhost/db?socket=/run/mysqld/mysqld.sock
    ///
    ///     mysql://user:pass@db.example.com/db?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/kindred/ca.pem
    ///
    /// The scheme is `mysql` or `mariadb`; user, password, database and query
    /// values are percent-decoded. Query items: `socket` (a Unix socket path;
    /// the host must then be `localhost` or empty), `connect_timeout`,
    /// `read_timeout`, `write_timeout` (whole seconds), and TLS (``TLS``):
    /// `ssl-mode` (`DISABLED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`),
    /// `ssl-ca`, `ssl-cert`, `ssl-key` (PEM file paths). Anything else is an
    /// error naming the item, so a misspelt option does not go unnoticed.
    /// A password holding `/`, `?` or `%` must be percent-encoded (`@` and
    /// `#` too, to be safe): an `@` after the first `/` or `?` is refused,
    /// since it cannot be told from part of the password.
    package struct Configuration: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
        CustomReflectable
    {
        /// How the server is reached.
        package enum Endpoint: Sendable, Hashable {
            /// TCP to `host` (a name or an address; IPv6 without brackets) and `port`.
            case tcp(host: String, port: Int)
            /// A Unix domain socket at `path`.
            case unixSocket(path: String)
        }

        package var endpoint: Endpoint
        package var user: String
        package var password: String
        /// The default database (`USE`), or `nil` for none.
        package var database: String?
        /// How long establishing the connection may take. Whole seconds, rounded up.
        package var connectTimeout: Duration
        /// How long one read from the server may wait: a server that stops
        /// answering (hung, paused, network gone) surfaces as a lost connection
        /// (2013) after about this long. It also caps how long a single
        /// statement may run, lock waits included, so keep it above
        /// `innodb_lock_wait_timeout` (50 s by default) for transactional
        /// work. Whole seconds, rounded up.
        package var readTimeout: Duration
        /// How long one write to the server may block. Whole seconds, rounded up.
        package var writeTimeout: Duration
        /// Transport encryption; nil: none (the same as ``TLS/Mode/disabled``).
        package var tls: TLS?

        /// TLS to the server, as the MySQL clients' `--ssl-mode` says it.
        ///
        /// libmariadb (Connector/C 3.3) options: every mode but `disabled`
        /// sets `MYSQL_OPT_SSL_ENFORCE`, which libmariadb 3.3 (Debian 12)
        /// honours only together with `MYSQL_OPT_SSL_VERIFY_SERVER_CERT`: with
        /// `required` or `verifyCA` it would log in over plain text when the
        /// server offers no TLS (or the offer is stripped on the way). So
        /// after every connect, ``MariaDBConnection/reconnect()`` included,
        /// the connection checks that the session is encrypted
        /// (`mysql_get_ssl_cipher`) and otherwise closes it and throws (2026,
        /// "did not use TLS although ssl-mode=…") before any statement is
        /// sent; the password has then already gone to the server, as it
        /// does in a plain-text login. ``ca`` is `MYSQL_OPT_SSL_CA` (with a
        /// CA, libmariadb verifies the server's certificate chain against it:
        /// a certificate another CA signed fails the connect); `verifyIdentity`
        /// also sets `MYSQL_OPT_SSL_VERIFY_SERVER_CERT`, which checks that the
        /// certificate names the host connected to; ``certificate`` and
        /// ``key`` are `MYSQL_OPT_SSL_CERT` and `MYSQL_OPT_SSL_KEY` (a client
        /// certificate, for servers that `REQUIRE X509`).
        package struct TLS: Sendable, Hashable {
            package enum Mode: String, Sendable, Hashable, CaseIterable {
                /// No TLS.
                case disabled = "DISABLED"
                /// Encrypted, the server's certificate not verified (no `ssl-ca` accepted).
                case required = "REQUIRED"
                /// Encrypted, the certificate chain verified against ``TLS/ca`` (required).
                case verifyCA = "VERIFY_CA"
                /// ``verifyCA``, and the certificate must name the host.
                case verifyIdentity = "VERIFY_IDENTITY"
            }

            package var mode: Mode
            /// The CA certificate(s) to trust, a PEM file path.
            package var ca: String?
            /// A client certificate, a PEM file path (with ``key``).
            package var certificate: String?
            /// The client certificate's private key, a PEM file path (with ``certificate``).
            package var key: String?

            package init(mode: Mode, ca: String? = nil, certificate: String? = nil, key: String? = nil) {
                self.mode = mode
                self.ca = ca
                self.certificate = certificate
                self.key = key
            }
        }

        /// A TCP configuration. Defaults: connect 5 s, read 60 s, write 60 s.
        package init(
            host: String, port: Int = 3306, user: String, password: String, database: String? = nil,
            connectTimeout: Duration = .seconds(5), readTimeout: Duration = .seconds(60),
            writeTimeout: Duration = .seconds(60)
        ) {
            self.init(
                endpoint: .tcp(host: host, port: port), user: user, password: password, database: database,
                connectTimeout: connectTimeout, readTimeout: readTimeout, writeTimeout: writeTimeout)
        }

        /// A Unix socket configuration. Defaults: connect 5 s, read 60 s, write 60 s.
        package init(
            socketPath: String, user: String, password: String, database: String? = nil,
            connectTimeout: Duration = .seconds(5), readTimeout: Duration = .seconds(60),
            writeTimeout: Duration = .seconds(60)
        ) {
            self.init(
                endpoint: .unixSocket(path: socketPath), user: user, password: password, database: database,
                connectTimeout: connectTimeout, readTimeout: readTimeout, writeTimeout: writeTimeout)
        }

        package init(
            endpoint: Endpoint, user: String, password: String, database: String?,
            connectTimeout: Duration, readTimeout: Duration, writeTimeout: Duration, tls: TLS? = nil
        ) {
            self.tls = tls
            self.endpoint = endpoint
            self.user = user
            self.password = password
            self.database = database
            self.connectTimeout = connectTimeout
            self.readTimeout = readTimeout
            self.writeTimeout = writeTimeout
        }

        /// Parses a `mysql://` URL (see the type's documentation). Errors say
        /// which part is wrong but never repeat the URL, which holds the password.
        package init(url: String) throws {
            self = try ConfigurationURLParser.parse(url)
        }

        /// The configuration as a URL with the password replaced by `***`.
        package var redactedURL: String { url(redactingPassword: true) }

        /// The configuration as a URL, password included: for handing to
        /// another process, never for logs.
        package var url: String { url(redactingPassword: false) }

        package var description: String { "MariaDBConnection.Configuration(\(redactedURL))" }
        package var debugDescription: String { description }

        package var customMirror: Mirror {
            Mirror(
                self,
                children: [
                    "endpoint": endpoint, "user": user, "password": "***", "database": database as Any,
                    "connectTimeout": connectTimeout, "readTimeout": readTimeout, "writeTimeout": writeTimeout,
                    "tls": tls as Any,
                ])
        }

        private func url(redactingPassword: Bool) -> String {
            let encodedPassword = redactingPassword ? "***" : PercentEncoding.encode(password)
            var text = "mysql://\(PercentEncoding.encode(user)):\(encodedPassword)@"
            var query: [String] = []
            switch endpoint {
            case .tcp(let host, let port):
                text += host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unixSocket(let path):
                text += "localhost"
                query.append("socket=\(PercentEncoding.encode(path, keeping: "/"))")
            }
            text += "/" + PercentEncoding.encode(database ?? "")
            query.append("connect_timeout=\(Self.wholeSeconds(connectTimeout))")
            query.append("read_timeout=\(Self.wholeSeconds(readTimeout))")
            query.append("write_timeout=\(Self.wholeSeconds(writeTimeout))")
            if let tls {
                query.append("ssl-mode=\(tls.mode.rawValue)")
                if let ca = tls.ca { query.append("ssl-ca=\(PercentEncoding.encode(ca, keeping: "/"))") }
                if let certificate = tls.certificate { query.append("ssl-cert=\(PercentEncoding.encode(certificate, keeping: "/"))") }
                if let key = tls.key { query.append("ssl-key=\(PercentEncoding.encode(key, keeping: "/"))") }
            }
            return text + "?" + query.joined(separator: "&")
        }

        /// `host:port` (IPv6 in brackets) or the socket path: no credentials.
        var endpointDescription: String {
            switch endpoint {
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unixSocket(let path): path
            }
        }

        /// libmariadb takes timeouts as whole seconds; 0 would mean "none", so
        /// a positive duration rounds up to at least one second.
        static func wholeSeconds(_ duration: Duration) -> UInt32 {
            let (seconds, attoseconds) = duration.components
            guard seconds >= 0, duration > .zero else { return 0 }
            let rounded = seconds + (attoseconds > 0 ? 1 : 0)
            return UInt32(clamping: rounded)
        }
    }
}

/// The `mysql://` URL grammar, kept out of the configuration type.
enum ConfigurationURLParser {
    typealias Configuration = MariaDBConnection.Configuration

    static func parse(_ url: String) throws -> Configuration {
        guard let schemeEnd = url.firstRange(of: "://") else { throw invalid("missing scheme (expected mysql://)") }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "mysql" || scheme == "mariadb" else { throw invalid("unsupported scheme (expected mysql://)") }
        var rest = url[schemeEnd.upperBound...]

        // RFC 3986: the authority (user info and host) ends at the first '/'
        // or '?'. A password holding an unencoded '/' or '?' followed by an
        // '@' cannot be told from an '@' in the database or a query value,
        // and reading it either way would put part of the password where an
        // error message or a host name repeats it: refuse, quoting nothing.
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        if rest[authorityEnd...].contains("@") {
            throw invalid(
                "'@' after the host: the password must be percent-encoded (@ ? / # as %40 %3F %2F %23), and so must an '@' in the database or a query value")
        }

        var queryText: Substring = ""
        if let question = rest.firstIndex(of: "?") {
            queryText = rest[rest.index(after: question)...]
            rest = rest[..<question]
        }
        var pathText: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            pathText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        // An unencoded '@' in the password is read as such: the last '@' ends the user info.
        guard let at = rest.lastIndex(of: "@") else { throw invalid("missing user (expected user:password@host)") }
        let userInfo = rest[..<at]
        let hostPort = rest[rest.index(after: at)...]

        let user: String
        let password: String
        if let colon = userInfo.firstIndex(of: ":") {
            user = try decode(userInfo[..<colon], part: "user")
            password = try decode(userInfo[userInfo.index(after: colon)...], part: "password")
        } else {
            user = try decode(userInfo, part: "user")
            password = ""
        }
        guard !user.isEmpty else { throw invalid("empty user") }

        let (host, port) = try parseHostPort(hostPort)
        let database = pathText.isEmpty ? nil : try decode(pathText, part: "database")

        var socket: String?
        var timeouts: [String: Duration] = [:]
        var tlsMode: Configuration.TLS.Mode?
        var tlsFiles: [String: String] = [:]
        for item in queryText.split(separator: "&", omittingEmptySubsequences: true) {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(pair[0])
            guard knownQueryItems.contains(key) else {
                throw invalid("unknown query item '\(key)' (known: \(knownQueryItems.joined(separator: ", ")))")
            }
            let value = pair.count > 1 ? try decode(pair[1], part: "query item \(key)") : ""
            switch key {
            case "socket":
                guard !value.isEmpty else { throw invalid("empty socket path") }
                socket = value
            case "connect_timeout", "read_timeout", "write_timeout":
                // libmariadb takes an unsigned int: a larger value would be clamped silently.
                guard let seconds = Int(value), (1...Int(UInt32.max)).contains(seconds) else {
                    throw invalid("\(key) must be a whole number of seconds from 1 to \(UInt32.max)")
                }
                timeouts[key] = .seconds(seconds)
            case "ssl-mode":
                guard let mode = Configuration.TLS.Mode(rawValue: value.uppercased()) else {
                    throw invalid("ssl-mode must be DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY")
                }
                tlsMode = mode
            case "ssl-ca", "ssl-cert", "ssl-key":
                guard !value.isEmpty else { throw invalid("empty \(key) path") }
                tlsFiles[key] = value
            default:
                preconditionFailure("a known query item without a case: \(key)")
            }
        }
        let tls = try tlsSettings(mode: tlsMode, files: tlsFiles)

        let endpoint: Configuration.Endpoint
        if let socket {
            guard host.isEmpty || host == "localhost" else { throw invalid("a socket URL needs host localhost") }
            guard port == nil else { throw invalid("a socket URL takes no port") }
            endpoint = .unixSocket(path: socket)
        } else {
            guard !host.isEmpty else { throw invalid("missing host") }
            endpoint = .tcp(host: host, port: port ?? 3306)
        }
        return Configuration(
            endpoint: endpoint, user: user, password: password, database: database,
            connectTimeout: timeouts["connect_timeout"] ?? .seconds(5),
            readTimeout: timeouts["read_timeout"] ?? .seconds(60),
            writeTimeout: timeouts["write_timeout"] ?? .seconds(60),
            tls: tls)
    }

    private static let knownQueryItems = [
        "socket", "connect_timeout", "read_timeout", "write_timeout", "ssl-mode", "ssl-ca", "ssl-cert", "ssl-key",
    ]

    /// The TLS settings the `ssl-*` items describe, refusing combinations
    /// that would not do what they seem to.
    private static func tlsSettings(mode: Configuration.TLS.Mode?, files: [String: String]) throws -> Configuration.TLS? {
        guard let mode else {
            if let item = files.keys.sorted().first {
                throw invalid("\(item) needs ssl-mode=REQUIRED, VERIFY_CA or VERIFY_IDENTITY")
            }
            return nil
        }
        let tls = Configuration.TLS(mode: mode, ca: files["ssl-ca"], certificate: files["ssl-cert"], key: files["ssl-key"])
        switch mode {
        case .disabled:
            if let item = files.keys.sorted().first { throw invalid("\(item) given with ssl-mode=DISABLED") }
        case .required:
            if tls.ca != nil { throw invalid("ssl-ca with ssl-mode=REQUIRED would verify the server: say ssl-mode=VERIFY_CA") }
        case .verifyCA, .verifyIdentity:
            if tls.ca == nil { throw invalid("ssl-mode=\(mode.rawValue) needs ssl-ca (the CA certificate to verify the server with)") }
        }
        if (tls.certificate == nil) != (tls.key == nil) { throw invalid("ssl-cert and ssl-key go together") }
        return tls
    }

    private static func parseHostPort(_ text: Substring) throws -> (String, Int?) {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw invalid("unexpected text after IPv6 address")
            }
        } else if let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        // Brackets only delimit an IPv6 address; spaces and control characters are never part of a host.
        guard host.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F && $0 != UInt8(ascii: "[") && $0 != UInt8(ascii: "]") }) else {
            throw invalid("invalid host")
        }
        var port: Int?
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else { throw invalid("port must be 1-65535") }
            port = value
        }
        return (String(host), port)
    }

    private static func decode(_ text: Substring, part: String) throws -> String {
        guard let decoded = PercentEncoding.decode(text) else { throw invalid("bad percent-encoding in \(part)") }
        return decoded
    }

    private static func invalid(_ reason: String) -> MariaDBError {
        MariaDBError(code: .invalidConfiguration, message: "invalid MySQL URL: \(reason)", operation: "parse URL")
    }
}
