import KindredSupport
import Synchronization

/// A connection to a Redis Cluster: one ``RedisConnection`` per node,
/// opened when a command first goes there, and the cluster's slot map,
/// read from a node on first use (`CLUSTER SLOTS`) and kept current by the
/// redirections the nodes answer (``ClusterRouting``).
///
/// Every command is routed by the hash slot of the key it names (the caller
/// gives it: Kindred always knows which member a command is about). A
/// pipeline is split by node, sent to every node before any reply is read,
/// and its results reassembled in order, one per command; a command that
/// draws a redirection or a cluster-state error is sent again on its own.
///
/// Threading: as ``RedisConnection``, not `Sendable`: one thread at a time,
/// never the cooperative pool. Its calls block, retries included (at most
/// ``ClusterRouting/Policy/retryBudget`` per command).
package final class ClusterConnection {
    package struct Configuration: Sendable, Hashable {
        /// Nodes to ask for the slot map, in order, until one answers.
        package var seeds: [ClusterNode]
        /// Credentials and timeouts for every node (host and port are each
        /// node's; a cluster has only database 0).
        package var node: RedisConnection.Configuration
        package var routing: ClusterRouting.Policy

        package init(seeds: [ClusterNode], node: RedisConnection.Configuration, routing: ClusterRouting.Policy = .init()) {
            precondition(!seeds.isEmpty, "a cluster needs at least one seed node")
            precondition(node.database == 0, "a Redis Cluster has only database 0")
            self.seeds = seeds
            self.node = node
            self.routing = routing
        }
    }

    package let configuration: Configuration
    private var connections: [ClusterNode: RedisConnection] = [:]
    private var map: ClusterSlotMap?
    private var mapIsStale = false
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant

    /// Connects to nothing yet: the map is read on first use.
    package init(configuration: Configuration) {
        self.configuration = configuration
        origin = clock.now
    }

    deinit { close() }

    /// The slot map as last read or corrected; nil before the first command.
    package var slotMap: ClusterSlotMap? { map }

    /// The nodes with an open connection.
    package var connectedNodes: [ClusterNode] { connections.keys.sorted() }

    /// Closes every node's connection; the next command connects again.
    package func close() {
        for connection in connections.values { connection.close() }
        connections = [:]
    }

    /// Reads the slot map from the first node that answers: the known
    /// masters first, then the seeds.
    package func refreshSlotMap() throws(RedisError) {
        var candidates = map?.masterNodes ?? []
        for seed in configuration.seeds where !candidates.contains(seed) { candidates.append(seed) }
        // Nodes an earlier connection of this process learned: a new
        // connection still finds the cluster when its seed node is gone.
        for node in LearnedClusterNodes.recall(seeds: configuration.seeds) where !candidates.contains(node) {
            candidates.append(node)
        }
        var lastError: RedisError?
        for node in candidates {
            do throws(RedisError) {
                let reply = try connection(to: node).send(RedisCommand("CLUSTER", "SLOTS")).checked(context: node.endpoint)
                let fresh: ClusterSlotMap
                do throws(ClusterError) {
                    fresh = try ClusterSlotMap(clusterSlots: reply, answeringHost: node.host)
                } catch {
                    throw RedisError(code: .serverError, message: error.message, context: node.endpoint, command: "CLUSTER")
                }
                guard fresh.coveredSlots > 0 else {
                    throw RedisError(code: .serverError, message: "cluster: the node serves no slots yet", context: node.endpoint, command: "CLUSTER")
                }
                map = fresh
                mapIsStale = false
                LearnedClusterNodes.remember(fresh, seeds: configuration.seeds)
                // Connections to nodes the map no longer names are closed.
                for (known, connection) in connections where !fresh.nodes.contains(known) {
                    connection.close()
                    connections[known] = nil
                }
                return
            } catch {
                drop(node)
                lastError = error
            }
        }
        throw lastError ?? RedisError(code: .connectionFailed, message: "cluster: no node to ask", context: "", command: "CLUSTER")
    }

    /// Sends one command about `key` (it, or its `{tag}`, picks the slot)
    /// and returns its reply. Error replies other than the cluster's own
    /// are values, as from ``RedisConnection/send(_:)``.
    ///
    /// - Throws: the last ``RedisError`` when the slot stayed unreachable
    ///   past the retry budget, or redirections did not end.
    package func send(_ command: RedisCommand, key: String) throws(RedisError) -> RedisValue {
        try send(command, slot: HashSlot(key: key))
    }

    /// ``send(_:key:)`` by slot.
    package func send(_ command: RedisCommand, slot: HashSlot) throws(RedisError) -> RedisValue {
        var routing = ClusterRouting(policy: configuration.routing)
        var target: ClusterNode? = nil
        var asking = false
        while true {
            let node: ClusterNode
            do throws(RedisError) {
                if let target { node = target } else { node = try route(slot) }
            } catch {
                // No map, or no node for the slot: read the map again after the delay.
                switch routing.afterFailure(error, now: elapsed()) {
                case .fail(let reason): throw failure(reason, error)
                case .retry(_, _, _, let delay): sleepThread(delay)
                case .done: break
                }
                mapIsStale = true
                continue
            }
            var next: ClusterRouting.Next
            do throws(RedisError) {
                let redis = try connection(to: node)
                if asking { _ = try redis.send(RedisCommand("ASKING")).checked(context: node.endpoint) }
                let reply = try redis.send(command)
                var known = map ?? ClusterSlotMap()
                next = routing.afterReply(reply, from: node, map: &known, now: elapsed())
                map = known
                switch next {
                case .done:
                    return reply
                case .fail(let reason):
                    throw RedisError(code: .serverError, message: "cluster: \(reason)", context: node.endpoint, command: command.name)
                case .retry:
                    // A moved slot: the rest of the map is read again before the next command.
                    if reply.errorKind == "MOVED" { mapIsStale = true }
                }
            } catch {
                if error.code == .serverError || error.code == .authenticationFailed { throw error }
                drop(node)
                next = routing.afterFailure(error, now: elapsed())
                if case .fail(let reason) = next { throw failure(reason, error) }
            }
            guard case .retry(let retryNode, let retryAsking, let refresh, let delay) = next else { continue }
            if delay > .zero { sleepThread(delay) }
            if refresh { mapIsStale = true }
            target = retryNode
            asking = retryAsking
        }
    }

    /// Sends `commands` (each with the slot of the key it is about) and
    /// returns one result per command, in order. Each node's commands are
    /// pipelined, every node written before any is read; a command whose
    /// reply is a redirection or a cluster-state error, or whose node
    /// failed, is then sent again on its own (``send(_:slot:)``).
    package func pipeline(_ commands: [(command: RedisCommand, slot: HashSlot)]) -> [Result<RedisValue, RedisError>] {
        var results = [Result<RedisValue, RedisError>?](repeating: nil, count: commands.count)
        var byNode: [ClusterNode: [Int]] = [:]
        var again: [Int] = []
        for (index, entry) in commands.enumerated() {
            do throws(RedisError) {
                byNode[try route(entry.slot), default: []].append(index)
            } catch {
                again.append(index)
            }
        }
        var sent: [(ClusterNode, [Int])] = []
        for (node, indexes) in byNode.sorted(by: { $0.key < $1.key }) {
            do throws(RedisError) {
                let redis = try connection(to: node)
                for index in indexes { redis.append(commands[index].command) }
                try redis.flush()
                sent.append((node, indexes))
            } catch {
                drop(node)
                again.append(contentsOf: indexes)
            }
        }
        for (node, indexes) in sent {
            guard let redis = connections[node] else {
                again.append(contentsOf: indexes)
                continue
            }
            for (position, index) in indexes.enumerated() {
                do throws(RedisError) {
                    let reply = try redis.readReply()
                    if Self.needsRouting(reply) {
                        again.append(index)
                    } else {
                        results[index] = .success(reply)
                    }
                } catch {
                    drop(node)
                    again.append(contentsOf: indexes[position...])
                    break
                }
            }
        }
        for index in again.sorted() {
            let entry = commands[index]
            do throws(RedisError) {
                results[index] = .success(try send(entry.command, slot: entry.slot))
            } catch {
                results[index] = .failure(error)
            }
        }
        return results.map { $0! }
    }

    // MARK: Node connections, for callers that pipeline one slot's commands themselves

    /// The connection to the master serving `slot`, opened if needed (the
    /// map read first when it is missing or stale). A caller that sends
    /// there directly reads any redirection in the replies itself, and
    /// calls ``markSlotMapStale()`` (then tries again) when one comes.
    package func connection(for slot: HashSlot) throws(RedisError) -> RedisConnection {
        try connection(to: route(slot))
    }

    /// A connection to every master, opened if needed: for work over the
    /// whole keyspace (`SCAN`, `DBSIZE`, `INFO`).
    package func masterConnections() throws(RedisError) -> [RedisConnection] {
        if map == nil || mapIsStale { try refreshSlotMap() }
        var connections: [RedisConnection] = []
        for node in map?.masterNodes ?? [] { connections.append(try connection(to: node)) }
        return connections
    }

    /// Reads the map again before the next command: after a redirection or
    /// a node's failure seen outside ``send(_:slot:)``. Node connections
    /// that broke, or have replies left unread, are closed.
    package func markSlotMapStale() {
        mapIsStale = true
        for (node, connection) in connections
        where connection.isBroken || connection.isClosed || connection.pendingReplyCount > 0 {
            connection.close()
            connections[node] = nil
        }
    }

    /// No node connection is broken or has replies left unread.
    package var isReusable: Bool {
        connections.values.allSatisfy { !$0.isClosed && !$0.isBroken && $0.pendingReplyCount == 0 }
    }

    /// Whether a reply means the command must be routed again (a
    /// redirection or a cluster-state error).
    package static func isRoutingReply(_ reply: RedisValue) -> Bool { needsRouting(reply) }

    /// Whether an error reply kind (`MOVED`, ...) means the command must be
    /// routed again.
    package static func isRoutingError(kind: String?) -> Bool {
        switch kind {
        case "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN": true
        default: false
        }
    }

    // MARK: Internals

    /// A reply the routing acts on rather than the caller.
    static func needsRouting(_ reply: RedisValue) -> Bool {
        isRoutingError(kind: reply.errorKind)
    }

    private func route(_ slot: HashSlot) throws(RedisError) -> ClusterNode {
        if map == nil || mapIsStale { try refreshSlotMap() }
        guard let node = map?.master(for: slot) else {
            mapIsStale = true
            throw RedisError(code: .connectionFailed, message: "cluster: no node serves slot \(slot)", context: "", command: nil)
        }
        return node
    }

    private func connection(to node: ClusterNode) throws(RedisError) -> RedisConnection {
        if let open = connections[node] {
            if open.isBroken { try open.reconnect() }
            return open
        }
        var configuration = configuration.node
        configuration.host = node.host
        configuration.port = node.port
        let connection = try RedisConnection(configuration: configuration)
        connections[node] = connection
        return connection
    }

    private func drop(_ node: ClusterNode) {
        connections[node]?.close()
        connections[node] = nil
    }

    private func elapsed() -> Duration { clock.now - origin }

    private func failure(_ reason: String, _ error: RedisError) -> RedisError {
        RedisError(code: error.code, message: "cluster: \(reason)", context: error.context, command: error.command)
    }
}

/// The nodes each seed list's slot maps named, shared by every
/// ``ClusterConnection`` of the process, masters first: a connection opened
/// after the seed node died (a pool's replacement, a reconnect) asks the
/// nodes its predecessors learned instead of failing on the seed alone.
enum LearnedClusterNodes {
    private static let nodes = Mutex<[[ClusterNode]: [ClusterNode]]>([:])

    static func remember(_ map: ClusterSlotMap, seeds: [ClusterNode]) {
        let masters = map.masterNodes
        let learned = masters + map.nodes.subtracting(masters).sorted()
        nodes.withLock { $0[seeds] = learned }
    }

    static func recall(seeds: [ClusterNode]) -> [ClusterNode] {
        nodes.withLock { $0[seeds] ?? [] }
    }
}
