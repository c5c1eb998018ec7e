/// A shard's id, as in the member store's shards table.
public typealias ShardID = UInt32

/// Where one Redis-compatible shard listens. The caller owns the list (the
/// shards table lives in the member store) and hands it to
/// ``ShardConnectionManager``, again whenever it changes.
public struct ShardEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var id: ShardID
    public var host: String
    public var port: Int

    public init(id: ShardID, host: String, port: Int) {
        precondition((1...65535).contains(port), "port must be 1...65535")
        self.id = id
        self.host = host
        self.port = port
    }

    /// Parses `redis://HOST:PORT` (`redis://HOST` means port 6379; an IPv6
    /// host goes in brackets: `redis://[::1]:7000`). User info, a path other
    /// than `/`, a query or a database number are rejected: a shard is a
    /// whole server.
    ///
    /// - Throws: ``ScoreStoreError/Code/invalidArgument`` naming what is wrong.
    public init(id: ShardID, url: String) throws(ScoreStoreError) {
        func bad(_ why: String) -> ScoreStoreError {
            ScoreStoreError(code: .invalidArgument, message: "bad shard URL: \(why) (expected redis://HOST:PORT)", shard: id)
        }
        guard url.hasPrefix("redis://") else { throw bad("it must start with redis://") }
        var rest = Substring(url.dropFirst("redis://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        if rest.contains("@") { throw bad("user info is not allowed") }
        if rest.contains("/") || rest.contains("?") || rest.contains("#") { throw bad("a path, query or fragment is not allowed") }
        let host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad("unclosed [ in an IPv6 host") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw bad("unexpected text after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw bad("the host is empty") }
        var port = 6379
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value), portText.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw bad("the port must be a number from 1 to 65535")
            }
            port = value
        }
        self.init(id: id, host: String(host), port: port)
    }

    /// `redis://HOST:PORT`.
    public var url: String {
        host.contains(":") ? "redis://[\(host)]:\(port)" : "redis://\(host):\(port)"
    }

    /// `shard 3 (redis://10.0.0.5:7000)`: no member data, safe to log.
    public var description: String { "shard \(id) (\(url))" }
}
