import RedisClient

/// A shard's id, as in the member store's shards table.
public typealias ShardID = UInt32

/// Where one Redis-compatible shard listens, with the credentials and
/// database number to use there. The caller owns the list (the shards table
/// lives in the member store) and hands it to ``ShardConnectionManager``,
/// again whenever it changes.
///
/// Printing one never shows the password (``description``: `shard 3
/// (redis://kindred:***@10.0.0.5:7000/2)`).
public struct ShardEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var id: ShardID
    /// Host, port, user, password, database.
    public var address: RedisURL

    public init(id: ShardID, address: RedisURL) {
        precondition((1...65535).contains(address.port), "port must be 1...65535")
        self.id = id
        self.address = address
    }

    /// A shard without credentials, database 0.
    public init(id: ShardID, host: String, port: Int) {
        self.init(id: id, address: RedisURL(host: host, port: port))
    }

    /// Parses a ``RedisURL`` (`redis://[USER:PASSWORD@]HOST[:PORT][/DB]`).
    ///
    /// - Throws: ``ScoreStoreError/Code/invalidArgument`` naming what is wrong.
    public init(id: ShardID, url: String) throws(ScoreStoreError) {
        do {
            self.init(id: id, address: try RedisURL(url))
        } catch {
            throw ScoreStoreError(code: .invalidArgument, message: "bad shard URL: \(error)", shard: id)
        }
    }

    public var host: String { address.host }
    public var port: Int { address.port }

    /// The URL with the password redacted: `redis://user:***@host:port/2`.
    public var url: String { address.description }

    /// `shard 3 (redis://10.0.0.5:7000)`: no member data and no password, safe to log.
    public var description: String { "shard \(id) (\(url))" }
}
