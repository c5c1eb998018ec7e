import KindredSupport

/// A Redis address as operators write it:
///
///     redis://HOST[:PORT][/DB]
///     redis://:PASSWORD@HOST[:PORT][/DB]          (requirepass, the default user)
///     redis://USER:PASSWORD@HOST[:PORT][/DB]      (a Redis 6+ ACL user)
///
/// HOST is a host name, an IPv4 literal or a bracketed IPv6 literal; PORT
/// 1-65535, default 6379; DB a database number 0-2147483647, default 0. USER
/// and PASSWORD are percent-decoded (`%40` for `@`, `%3A` for `:`, `%2F` for
/// `/`). Nothing else is accepted: no query, no fragment, no user without a
/// password, so a typo is an error rather than silently ignored.
///
/// Secrets: ``description``, `debugDescription` and the reflection mirror
/// (`dump`) show the password as `***` (`redis://kindred:***@host:6379/2`),
/// so a URL can be printed or logged whole. ``urlIncludingPassword`` is the
/// only form that carries the password: for storing and handing to another
/// process, never for output. Parse errors never repeat a URL that has
/// credentials in it.
package struct RedisURL: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    package let host: String
    package let port: Int
    /// The ACL user (`AUTH user password`); nil: the default user (`AUTH password`).
    package let user: String?
    /// Sent with `AUTH` on every connect; nil: no `AUTH`.
    package let password: String?
    /// Selected with `SELECT` on every connect when not 0.
    package let database: Int

    package static let maxDatabase = Int(Int32.max)

    package init(host: String, port: Int, user: String? = nil, password: String? = nil, database: Int = 0) {
        precondition(user == nil || password != nil, "a Redis user needs a password")
        precondition((0...Self.maxDatabase).contains(database), "database must be 0...\(Self.maxDatabase)")
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// Parses `text`; the error names what is wrong (and never holds the password).
    package init(_ text: String) throws(RedisURLError) {
        // A URL with user info may hold a password: never echo it.
        let shown = text.contains("@") ? "redis URL (credentials not shown)" : text
        func invalid(_ reason: String) -> RedisURLError { RedisURLError(shown: shown, reason: reason) }

        guard text.hasPrefix("redis://") else {
            if text.hasPrefix("rediss://") {
                throw invalid("TLS (rediss://) is not supported by hiredis 0.14; reach the server through a local TLS tunnel (docs/managed-servers.md)")
            }
            throw invalid("must start with redis://")
        }
        var rest = text.dropFirst("redis://".count)
        if rest.contains("?") { throw invalid("query options are not accepted (redis://[USER:PASSWORD@]HOST[:PORT][/DB])") }
        if rest.contains("#") { throw invalid("a fragment (#) is not accepted; percent-encode it as %23 in a password") }
        // User info ends at the last '@' before the path.
        var userInfo: Substring?
        if let at = rest.lastIndex(of: "@") {
            let info = rest[..<at]
            if info.contains("/") { throw invalid("a '/' in the user or password must be percent-encoded as %2F") }
            userInfo = info
            rest = rest[rest.index(after: at)...]
        }
        var pathText: Substring?
        if let slash = rest.firstIndex(of: "/") {
            pathText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        guard !rest.isEmpty else { throw invalid("no host") }

        var user: String?
        var password: String?
        if let userInfo {
            guard let colon = userInfo.firstIndex(of: ":") else {
                throw invalid("a user needs a password (redis://USER:PASSWORD@HOST, or redis://:PASSWORD@HOST)")
            }
            let userText = userInfo[..<colon]
            let passwordText = userInfo[userInfo.index(after: colon)...]
            guard let decodedUser = PercentEncoding.decode(userText) else { throw invalid("bad percent-encoding in the user") }
            guard let decodedPassword = PercentEncoding.decode(passwordText) else { throw invalid("bad percent-encoding in the password") }
            guard !decodedPassword.isEmpty else { throw invalid("empty password") }
            guard !decodedUser.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } == true }) else {
                throw invalid("the user holds a space or a control character")
            }
            user = decodedUser.isEmpty ? nil : decodedUser
            password = decodedPassword
        }

        var database = 0
        if let pathText, !pathText.isEmpty {
            guard pathText.allSatisfy({ $0.isASCII && $0.isNumber }), pathText.count <= 10, let value = Int(pathText),
                value <= Self.maxDatabase
            else { throw invalid("the path must be a database number 0 to \(Self.maxDatabase) (redis://HOST:PORT/DB)") }
            database = value
        }

        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unclosed [") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("expected :PORT after ]") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty,
            host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" || $0 == "_" })
        else { throw invalid("invalid host") }
        var port = 6379
        if let portText {
            guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(portText), (1...65535).contains(value) else {
                throw invalid("the port must be 1 to 65535")
            }
            port = value
        }
        self.host = String(host)
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// `redis://user:***@host:port/2`: the password redacted, the database
    /// shown when not 0. Safe to print and log.
    package var description: String { url(redactingPassword: true) }
    package var debugDescription: String { "RedisURL(\(description))" }

    package var customMirror: Mirror {
        Mirror(self, children: [
            "host": host, "port": port, "user": user as Any, "password": password == nil ? "nil" : "***",
            "database": database,
        ])
    }

    /// The URL with the password, percent-encoded: parses back to an equal
    /// value. For storing and handing on, never for output.
    package var urlIncludingPassword: String { url(redactingPassword: false) }

    /// `redis://host:port` or `redis://user@host:port`, with the database
    /// when not 0: how errors name the server (no password in any form).
    package var server: String {
        var text = "redis://"
        if let user { text += PercentEncoding.encode(user) + "@" }
        return text + hostPort + (database == 0 ? "" : "/\(database)")
    }

    /// `host:port` (`[::1]:7000` for IPv6).
    package var hostPort: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    private func url(redactingPassword: Bool) -> String {
        var text = "redis://"
        if let password {
            if let user { text += PercentEncoding.encode(user) }
            text += ":" + (redactingPassword ? "***" : PercentEncoding.encode(password)) + "@"
        }
        return text + hostPort + (database == 0 ? "" : "/\(database)")
    }

    /// A connection configuration for this address: `AUTH` and `SELECT`
    /// happen on every connect and reconnect.
    package func configuration(
        connectTimeout: Duration = .seconds(2), readTimeout: Duration? = .seconds(5)
    ) -> RedisConnection.Configuration {
        RedisConnection.Configuration(
            host: host, port: port, user: user, password: password, database: database,
            connectTimeout: connectTimeout, readTimeout: readTimeout)
    }
}

package struct RedisURLError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, without the URL: `the port must be 1 to 65535`.
    package let reason: String
    /// The URL (when it holds no credentials) and the reason.
    package let description: String

    package init(_ description: String) {
        self.reason = description
        self.description = description
    }

    init(shown: String, reason: String) {
        self.reason = reason
        self.description = "\(shown): \(reason)"
    }
}
