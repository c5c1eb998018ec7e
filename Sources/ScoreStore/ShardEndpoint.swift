import RedisClient

/// A shard's id, as in the member store's shards table.
package typealias ShardID = UInt32

/// Where one Redis-compatible shard listens, with the credentials and
/// database number to use there. The caller owns the list (the shards table
/// lives in the member store) and hands it to ``ShardConnectionManager``,
/// again whenever it changes.
///
/// Printing one never shows the password (``description``: `shard 3
/// (redis://kindred:***@10.0.0.5:7000/2)`).
///
/// A shard is one standalone server, or a whole Redis Cluster
/// (``isCluster``): then ``address`` is a seed node, and the store routes
/// each member's keys (one hash slot per member: the `{id}` tag) to the
/// master that serves it.
package struct ShardEndpoint: Sendable, Hashable, CustomStringConvertible {
    package var id: ShardID
    /// Host, port, user, password, database; a cluster's seed node.
    package var address: RedisURL
    /// The address is a Redis Cluster's node: the shard is the cluster.
    package var isCluster: Bool

    package init(id: ShardID, address: RedisURL, isCluster: Bool = false) {
        precondition((1...65535).contains(address.port), "port must be 1...65535")
        precondition(!isCluster || address.database == 0, "a Redis Cluster has only database 0")
        self.id = id
        self.address = address
        self.isCluster = isCluster
    }

    /// A shard without credentials, database 0.
    package init(id: ShardID, host: String, port: Int) {
        self.init(id: id, address: RedisURL(host: host, port: port))
    }

    /// Parses a ``RedisURL`` (`redis://[USER:PASSWORD@]HOST[:PORT][/DB]`),
    /// or a cluster's seed node as `redis+cluster://[USER:PASSWORD@]HOST[:PORT]`.
    ///
    /// - Throws: ``ScoreStoreError/Code/invalidArgument`` naming what is wrong.
    package init(id: ShardID, url: String) throws(ScoreStoreError) {
        let clusterScheme = "redis+cluster://"
        let isCluster = url.lowercased().hasPrefix(clusterScheme)
        let address: RedisURL
        do {
            address = try RedisURL(isCluster ? "redis://" + url.dropFirst(clusterScheme.count) : url)
        } catch {
            throw ScoreStoreError(code: .invalidArgument, message: "bad shard URL: \(error)", shard: id)
        }
        guard !isCluster || address.database == 0 else {
            throw ScoreStoreError(code: .invalidArgument, message: "bad shard URL: a Redis Cluster has only database 0", shard: id)
        }
        self.init(id: id, address: address, isCluster: isCluster)
    }

    package var host: String { address.host }
    package var port: Int { address.port }

    /// The URL with the password redacted: `redis://user:***@host:port/2`
    /// (`redis+cluster://` for a cluster).
    package var url: String {
        isCluster ? "redis+cluster://" + address.description.dropFirst("redis://".count) : address.description
    }

    /// `shard 3 (redis://10.0.0.5:7000)`: no member data and no password, safe to log.
    package var description: String { "shard \(id) (\(url))" }
}
