/// A Redis address as operators write it: `redis://HOST:PORT` (HOST a host
/// name, an IPv4 literal or a bracketed IPv6 literal; PORT 1-65535, default
/// 6379). Nothing else is accepted: no credentials, database number or
/// query, so a typo is an error rather than silently ignored.
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `text`; the error names what is wrong.
    public init(_ text: String) throws(RedisURLError) {
        guard text.hasPrefix("redis://") else { throw RedisURLError("\(text): must start with redis://") }
        var rest = text.dropFirst("redis://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }  // `redis://host:port/` names the same server
        guard !rest.isEmpty else { throw RedisURLError("\(text): no host") }
        if rest.contains("@") || rest.contains("/") || rest.contains("?") || rest.contains("#") {
            throw RedisURLError("\(text): only redis://HOST:PORT is accepted")
        }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw RedisURLError("\(text): unclosed [") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw RedisURLError("\(text): expected :PORT after ]") }
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
        else { throw RedisURLError("\(text): invalid host") }
        var port = 6379
        if let portText {
            guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(portText), (1...65535).contains(value) else {
                throw RedisURLError("\(text): the port must be 1 to 65535")
            }
            port = value
        }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "redis://[\(host)]:\(port)" : "redis://\(host):\(port)" }

    /// A connection configuration for this address.
    public func configuration(
        connectTimeout: Duration = .seconds(2), readTimeout: Duration? = .seconds(5)
    ) -> RedisConnection.Configuration {
        RedisConnection.Configuration(host: host, port: port, connectTimeout: connectTimeout, readTimeout: readTimeout)
    }
}

public struct RedisURLError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
