import KindredSupport
import RedisClient

/// Where the queue lives: one Redis server (`redis://[USER:PASSWORD@]HOST[:PORT][/DB]`),
/// or a Redis Cluster named by one of its nodes
/// (`redis+cluster://[USER:PASSWORD@]HOST[:PORT]`).
///
/// Printing one never shows the password.
package struct QueueAddress: Sendable, Hashable, CustomStringConvertible {
    /// Host, port, credentials, database; a cluster's seed node.
    package var url: RedisURL
    /// The address is a Redis Cluster's node: the queue lives on that cluster.
    package var isCluster: Bool

    package init(_ url: RedisURL, isCluster: Bool = false) {
        precondition(!isCluster || url.database == 0, "a Redis Cluster has only database 0")
        self.url = url
        self.isCluster = isCluster
    }

    static let clusterScheme = "redis+cluster://"

    /// Parses `redis://…` or `redis+cluster://…`.
    ///
    /// - Throws: ``RedisURLError`` naming what is wrong, never quoting a password.
    package init(_ text: String) throws(RedisURLError) {
        let isCluster = text.lowercased().hasPrefix(Self.clusterScheme)
        let url = try RedisURL(isCluster ? "redis://" + text.dropFirst(Self.clusterScheme.count) : text)
        guard !isCluster || url.database == 0 else {
            throw RedisURLError("a Redis Cluster has only database 0")
        }
        self.init(url, isCluster: isCluster)
    }

    /// The address with the password redacted.
    package var description: String {
        isCluster ? Self.clusterScheme + url.description.dropFirst("redis://".count) : url.description
    }
}

/// A connection to the queue's Redis: one server, or the master of a Redis
/// Cluster that serves the queue's hash slot.
///
/// On a cluster every queue key carries one hash tag (``QueueKeys/onCluster``),
/// so every key, script and `MULTI` of the queue lives on one master, as on
/// a single server. A command answered with a redirection or a cluster-state
/// error (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`: the command did not
/// run), or whose master cannot be reached, is sent again after the slot
/// map is read again, with doubling delays, within the routing policy's
/// retry budget: a failover or a resharding of the queue's slot is waited
/// out. A connection that breaks after a command was sent throws, as on a
/// single server: the command may have run, and the caller decides (the
/// queue's operations are safe to redo, or their effects are reaped).
///
/// Threading: as ``RedisConnection``, not `Sendable`: one thread at a time,
/// never the cooperative pool. Its calls block.
package final class QueueConnection {
    private enum Link {
        case server(RedisConnection)
        case cluster(ClusterConnection)
    }

    package let address: QueueAddress
    private let link: Link

    /// Connects to the server, or reads the cluster's slot map from the seed
    /// (a node's connection opens on first use).
    ///
    /// - Throws: ``RedisError`` when the server, or every node asked, is unreachable.
    package convenience init(
        address: QueueAddress, connectTimeout: Duration = .seconds(2), readTimeout: Duration? = .seconds(10),
        routing: ClusterRouting.Policy = .init()
    ) throws(RedisError) {
        try self.init(
            address: address, configuration: address.url.configuration(connectTimeout: connectTimeout, readTimeout: readTimeout),
            routing: routing)
    }

    /// As ``init(address:connectTimeout:readTimeout:routing:)`` with every
    /// connection setting given (`configuration`'s host, port, credentials
    /// and database are the address's; its timeouts, keep-alive and retry
    /// policy apply to the server or every node).
    package init(address: QueueAddress, configuration: RedisConnection.Configuration, routing: ClusterRouting.Policy = .init()) throws(RedisError) {
        self.address = address
        var configuration = configuration
        configuration.host = address.url.host
        configuration.port = address.url.port
        configuration.user = address.url.user
        configuration.password = address.url.password
        configuration.database = address.url.database
        if address.isCluster {
            let cluster = ClusterConnection(configuration: ClusterConnection.Configuration(
                seeds: [ClusterNode(host: address.url.host, port: address.url.port)], node: configuration, routing: routing))
            try cluster.refreshSlotMap()
            link = .cluster(cluster)
        } else {
            link = .server(try RedisConnection(configuration: configuration))
        }
    }

    /// The queue on an open server connection, which the caller keeps
    /// using as well (tests, tools): closing this closes it.
    package init(_ server: RedisConnection) {
        address = QueueAddress(RedisURL(
            host: server.configuration.host, port: server.configuration.port, user: server.configuration.user,
            password: server.configuration.password, database: server.configuration.database))
        link = .server(server)
    }

    package var isCluster: Bool { address.isCluster }

    /// `host:port` of the server or the seed node, for messages.
    package var endpoint: String { address.url.hostPort }

    package func close() {
        switch link {
        case .server(let redis): redis.close()
        case .cluster(let cluster): cluster.close()
        }
    }

    /// Whether a command's failure left this connection unusable (open a new one).
    package var isBroken: Bool {
        switch link {
        case .server(let redis): redis.isBroken || redis.isClosed
        case .cluster(let cluster): !cluster.isReusable
        }
    }

    // MARK: Commands (each names one of the queue's keys, which routes it on a cluster)

    /// Sends one command about `key`.
    package func send(_ command: RedisCommand, key: String) throws(RedisError) -> RedisValue {
        try onNode(key: key, retrying: { ClusterConnection.isRoutingReply($0) }) { redis throws(RedisError) in
            try redis.send(command)
        }
    }

    /// Runs a script (`EVALSHA`, `EVAL` after `NOSCRIPT`) on the node of its first key.
    package func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) throws(RedisError) -> RedisValue {
        try onNode(key: keys.first ?? "", retrying: { ClusterConnection.isRoutingReply($0) }) { redis throws(RedisError) in
            try redis.evaluate(script, keys: keys, arguments: arguments)
        }
    }

    /// Pipelines commands about keys of one slot (`key` names one of them).
    /// On a cluster the whole pipeline is sent again when any reply is a
    /// redirection: the queue's pipelines are safe to repeat (marks,
    /// version bumps, reads).
    package func pipeline(_ commands: [RedisCommand], key: String) throws(RedisError) -> [Result<RedisValue, RedisError>] {
        try onNode(key: key, retrying: { results in
            results.contains { result in
                if case .success(let reply) = result { return ClusterConnection.isRoutingReply(reply) }
                return false
            }
        }) { redis throws(RedisError) in
            redis.pipeline(commands)
        }
    }

    /// Sends a command about `key` without reading its reply, so that the
    /// caller overlaps the round trip with another; ``readReply(_:key:)``
    /// reads it (and routes it again on a cluster when it must).
    package func request(_ command: RedisCommand, key: String) throws(RedisError) {
        let redis: RedisConnection
        switch link {
        case .server(let server): redis = server
        case .cluster(let cluster):
            do throws(RedisError) {
                redis = try cluster.connection(for: HashSlot(key: key))
            } catch {
                cluster.markSlotMapStale()
                throw error
            }
        }
        redis.append(command)
        do { try redis.flush() } catch {
            _ = try? redis.readReply()  // keeps the connection's reply count straight; it is broken anyway
            if case .cluster(let cluster) = link { cluster.markSlotMapStale() }
            throw error
        }
        pendingRequest = (redis, command)
    }

    private var pendingRequest: (RedisConnection, RedisCommand)?

    /// The reply to the last ``request(_:key:)``.
    package func readReply(key: String) throws(RedisError) -> RedisValue {
        guard let (redis, command) = pendingRequest else {
            preconditionFailure("readReply(key:) without a request(_:key:) before it")
        }
        pendingRequest = nil
        let reply: RedisValue
        do { reply = try redis.readReply() } catch {
            if case .cluster(let cluster) = link { cluster.markSlotMapStale() }
            throw error
        }
        guard isCluster, ClusterConnection.isRoutingReply(reply) else { return reply }
        return try send(command, key: key)
    }

    // MARK: Routing

    /// Runs `body` on the server, or on the master serving `key`'s slot,
    /// again while `retrying` says the reply is a cluster's redirection or
    /// the master cannot be reached, within the retry budget.
    private func onNode<T>(
        key: String, retrying: (T) -> Bool, _ body: (RedisConnection) throws(RedisError) -> T
    ) throws(RedisError) -> T {
        let cluster: ClusterConnection
        switch link {
        case .server(let redis): return try body(redis)
        case .cluster(let connection): cluster = connection
        }
        let clock = ContinuousClock()
        let start = clock.now
        var backoff = Backoff(cluster.configuration.routing.backoff)
        let slot = HashSlot(key: key)
        while true {
            let redis: RedisConnection
            do throws(RedisError) {
                redis = try cluster.connection(for: slot)
            } catch {
                // Nothing was sent: no node answered, or none serves the slot (a failover under way).
                cluster.markSlotMapStale()
                guard error.code != .authenticationFailed, let delay = backoff.next(elapsed: clock.now - start) else { throw error }
                sleepThread(delay)
                continue
            }
            let result: T
            do throws(RedisError) {
                result = try body(redis)
            } catch {
                cluster.markSlotMapStale()
                throw error
            }
            guard retrying(result) else { return result }
            // The command did not run there: the slot moved or the cluster is not serving it yet.
            cluster.markSlotMapStale()
            guard let delay = backoff.next(elapsed: clock.now - start) else { return result }
            sleepThread(delay)
        }
    }
}
