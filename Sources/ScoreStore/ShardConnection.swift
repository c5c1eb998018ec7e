import RedisClient
import Scoring

/// One pooled connection to a shard, lent by ``ShardConnectionManager`` to
/// one caller at a time.
///
/// A standalone shard is one ``RedisConnection``; a cluster shard is a
/// ``ClusterConnection`` (a connection per master, opened when first
/// needed). Operations reach a member's keys through ``redis(for:)`` (every
/// key of a member shares its `{id}` hash slot, so a member's commands, and
/// its scripts, run on one server), and the whole keyspace through
/// ``servers()``.
///
/// It remembers which Lua scripts each server has loaded (`SCRIPT LOAD`
/// once per server connection; a `NOSCRIPT` reply, after a `SCRIPT FLUSH`,
/// makes the store load again) and when it was last used, for the idle
/// timeout.
///
/// Not `Sendable` in spirit: the manager hands it to one thread at a time
/// and takes it back before lending it again.
package final class ShardConnection: @unchecked Sendable {
    // Why this is safe: the manager's lock hands a connection to one thread
    // at a time (checkout/checkin), which is the only way to reach it; the
    // thread that holds it is the only one that touches its vars and C handle.
    package let shard: ShardID
    private let link: Link
    /// SHA1 of each script loaded, by server endpoint and script name.
    var scriptSHAs: [String: String] = [:]
    /// When it was last returned to the pool (the manager's clock).
    var lastUsed: ContinuousClock.Instant

    private enum Link {
        case server(RedisConnection)
        case cluster(ClusterConnection)
    }

    private init(shard: ShardID, link: Link, now: ContinuousClock.Instant) {
        self.shard = shard
        self.link = link
        self.lastUsed = now
    }

    /// Whether the shard is a Redis Cluster.
    package var isCluster: Bool {
        if case .cluster = link { return true }
        return false
    }

    /// The connection to the server holding `member`'s keys.
    package func redis(for member: MemberID) throws(RedisError) -> RedisConnection {
        switch link {
        case .server(let redis): redis
        case .cluster(let cluster): try cluster.connection(for: ScoreLayout.slot(of: member))
        }
    }

    /// The connection to the server holding `key` (a shard-wide key such
    /// as the marker: on a cluster, the master of its slot).
    package func redis(forKey key: String) throws(RedisError) -> RedisConnection {
        switch link {
        case .server(let redis): redis
        case .cluster(let cluster): try cluster.connection(for: HashSlot(key: key))
        }
    }

    /// `members`' positions grouped by the server holding their keys, each
    /// group in the order given.
    package func route(_ members: [MemberID]) throws(RedisError) -> [(redis: RedisConnection, indexes: [Int])] {
        switch link {
        case .server(let redis):
            return members.isEmpty ? [] : [(redis, Array(members.indices))]
        case .cluster(let cluster):
            var groups: [ObjectIdentifier: (redis: RedisConnection, indexes: [Int])] = [:]
            var order: [ObjectIdentifier] = []
            for (index, member) in members.enumerated() {
                let redis = try cluster.connection(for: ScoreLayout.slot(of: member))
                let key = ObjectIdentifier(redis)
                if groups[key] == nil {
                    groups[key] = (redis, [])
                    order.append(key)
                }
                groups[key]!.indexes.append(index)
            }
            return order.map { groups[$0]! }
        }
    }

    /// Every server holding part of the shard: the server, or each master.
    package func servers() throws(RedisError) -> [RedisConnection] {
        switch link {
        case .server(let redis): [redis]
        case .cluster(let cluster): try cluster.masterConnections()
        }
    }

    /// A cluster shard's slot map as last read (nil on a server, or before
    /// the first command).
    package var slotMap: ClusterSlotMap? {
        if case .cluster(let cluster) = link { return cluster.slotMap }
        return nil
    }

    /// After a redirection or a node's failure on a cluster shard: the slot
    /// map is read again before the next command. Nothing on a server.
    func rerouted() {
        if case .cluster(let cluster) = link { cluster.markSlotMapStale() }
    }

    /// Closes every socket.
    func close() {
        switch link {
        case .server(let redis): redis.close()
        case .cluster(let cluster): cluster.close()
        }
    }

    /// Connects (with `AUTH` and `SELECT` when the endpoint's URL has them,
    /// before anything else) and names the connection (`CLIENT SETNAME`), so
    /// that `CLIENT LIST` on a shard shows which clients are Kindred's. A
    /// cluster shard connects to nothing yet: its first command reads the
    /// slot map from the seed node.
    static func open(
        _ endpoint: ShardEndpoint, configuration: ShardConnectionManager.Configuration, now: ContinuousClock.Instant
    ) throws(RedisError) -> ShardConnection {
        let address = endpoint.address
        let node = RedisConnection.Configuration(
            host: address.host, port: address.port, user: address.user, password: address.password,
            database: address.database,
            connectTimeout: configuration.connectTimeout,
            readTimeout: configuration.readTimeout,
            keepAlive: true,
            retry: configuration.retry)
        if endpoint.isCluster {
            let cluster = ClusterConnection(configuration: ClusterConnection.Configuration(
                seeds: [ClusterNode(host: address.host, port: address.port)], node: node))
            try cluster.refreshSlotMap()  // fails here, like a server's connect, when no node answers
            return ShardConnection(shard: endpoint.id, link: .cluster(cluster), now: now)
        }
        let redis = try RedisConnection(configuration: node)
        do {
            _ = try redis.sendChecked(["CLIENT", "SETNAME", configuration.clientName])
        } catch {
            redis.close()
            throw error
        }
        return ShardConnection(shard: endpoint.id, link: .server(redis), now: now)
    }

    /// True when the connection can go back to the pool: open, not broken,
    /// and no reply left unread.
    var isReusable: Bool {
        switch link {
        case .server(let redis): !redis.isClosed && !redis.isBroken && redis.pendingReplyCount == 0
        case .cluster(let cluster): cluster.isReusable
        }
    }
}
