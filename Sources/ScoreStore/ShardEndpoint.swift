import RedisClient

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
        do {
            let address = try RedisURL(url)
            self.init(id: id, host: address.host, port: address.port)
        } catch {
            throw ScoreStoreError(code: .invalidArgument, message: "bad shard URL: \(error) (expected redis://HOST:PORT)", shard: id)
        }
    }

    /// `redis://HOST:PORT`.
    public var url: String { RedisURL(host: host, port: port).description }

    /// `shard 3 (redis://10.0.0.5:7000)`: no member data, safe to log.
    public var description: String { "shard \(id) (\(url))" }
}
