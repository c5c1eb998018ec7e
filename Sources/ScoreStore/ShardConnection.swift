import RedisClient

/// One pooled connection to a shard, lent by ``ShardConnectionManager`` to
/// one caller at a time.
///
/// Besides the ``RedisConnection`` it remembers which Lua scripts it has
/// loaded (`SCRIPT LOAD` once per connection; a `NOSCRIPT` reply, after a
/// `SCRIPT FLUSH`, makes the store load again) and when it was last used,
/// for the idle timeout.
///
/// Not `Sendable` in spirit: the manager hands it to one thread at a time
/// and takes it back before lending it again.
public final class ShardConnection: @unchecked Sendable {
    // @unchecked Sendable: the manager's lock hands a connection to one
    // thread at a time (checkout/checkin), which is the only way to reach it.
    public let shard: ShardID
    public let redis: RedisConnection
    /// SHA1 of each script loaded on this connection, by script name.
    var scriptSHAs: [String: String] = [:]
    /// When it was last returned to the pool (the manager's clock).
    var lastUsed: ContinuousClock.Instant

    init(shard: ShardID, redis: RedisConnection, now: ContinuousClock.Instant) {
        self.shard = shard
        self.redis = redis
        self.lastUsed = now
    }

    /// Connects (with `AUTH` and `SELECT` when the endpoint's URL has them,
    /// before anything else) and names the connection (`CLIENT SETNAME`), so
    /// that `CLIENT LIST` on a shard shows which clients are Kindred's.
    static func open(
        _ endpoint: ShardEndpoint, configuration: ShardConnectionManager.Configuration, now: ContinuousClock.Instant
    ) throws(RedisError) -> ShardConnection {
        let address = endpoint.address
        let redis = try RedisConnection(configuration: RedisConnection.Configuration(
            host: address.host, port: address.port, user: address.user, password: address.password,
            database: address.database,
            connectTimeout: configuration.connectTimeout,
            readTimeout: configuration.readTimeout,
            keepAlive: true,
            retry: configuration.retry))
        do {
            _ = try redis.sendChecked(["CLIENT", "SETNAME", configuration.clientName])
        } catch {
            redis.close()
            throw error
        }
        return ShardConnection(shard: endpoint.id, redis: redis, now: now)
    }

    /// True when the connection can go back to the pool: open, not broken,
    /// and no reply left unread.
    var isReusable: Bool {
        !redis.isClosed && !redis.isBroken && redis.pendingReplyCount == 0
    }
}
