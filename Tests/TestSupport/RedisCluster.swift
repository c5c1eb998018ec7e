import Foundation
import RedisClient

/// A real Redis Cluster that a test owns: `masters` masters with
/// `replicasPerMaster` replicas each, every node a ``RedisServer`` started
/// with `--cluster-enabled yes` on free loopback ports (the client port and
/// the cluster bus port both picked free), joined by `redis-cli --cluster
/// create`, and healthy (every node says `cluster_state:ok` and knows all
/// 16,384 slots) when the initializer returns.
///
/// `nodeTimeout` is the cluster's `cluster-node-timeout`: how long a master
/// must be unreachable before its replica takes over.
package final class RedisCluster: @unchecked Sendable {
    // @unchecked Sendable: every stored property is a `let` of a Sendable type.

    package let nodes: [RedisServer]
    package let nodeTimeout: Duration

    package init(masters: Int = 3, replicasPerMaster: Int = 1, nodeTimeout: Duration = .seconds(2)) throws {
        precondition(masters >= 3, "redis-cli --cluster create needs at least 3 masters")
        self.nodeTimeout = nodeTimeout
        let milliseconds = nodeTimeout.components.seconds * 1000 + nodeTimeout.components.attoseconds / 1_000_000_000_000_000
        var nodes: [RedisServer] = []
        for _ in 0..<(masters * (1 + replicasPerMaster)) {
            nodes.append(try RedisServer(options: .init(config: [
                "cluster-enabled": "yes",
                "cluster-node-timeout": String(milliseconds),
                // The bus port picked too: the default (port + 10,000) may be taken or past 65,535.
                "cluster-port": String(try freeLoopbackPort()),
                // A replica may take over however long it was cut off: the tests kill masters on purpose.
                "cluster-replica-validity-factor": "0",
                "appendonly": "no",
            ])))
        }
        self.nodes = nodes
        let cli = try locateBinary("redis-cli", package: "redis-tools")
        let addresses = nodes.map { "127.0.0.1:\($0.port)" }
        let (status, output) = try runProcess(
            cli, ["--cluster", "create"] + addresses + ["--cluster-replicas", String(replicasPerMaster), "--cluster-yes"],
            timeout: .seconds(60))
        guard status == 0 else { throw TestSupportError("redis-cli --cluster create failed (\(status)):\n\(output)") }
        try waitUntilHealthy(timeout: .seconds(60), replicasPerMaster: replicasPerMaster)
    }

    /// The seed nodes a client starts from: every node.
    package var seeds: [ClusterNode] { nodes.map { ClusterNode(host: $0.host, port: Int($0.port)) } }

    /// A client configuration for this cluster with short timeouts.
    package func configuration(routing: ClusterRouting.Policy = .init()) -> ClusterConnection.Configuration {
        ClusterConnection.Configuration(
            seeds: seeds,
            node: RedisConnection.Configuration(
                host: "127.0.0.1", port: Int(nodes[0].port), connectTimeout: .seconds(2), readTimeout: .seconds(10)),
            routing: routing)
    }

    /// The node (server) listening on `node`'s port.
    package func server(_ node: ClusterNode) -> RedisServer? {
        nodes.first { Int($0.port) == node.port }
    }

    /// Waits until every running node reports `cluster_state:ok`, knows a
    /// master for all 16,384 slots (with `replicasPerMaster` replicas each,
    /// when given), and all of them agree on the masters.
    package func waitUntilHealthy(timeout: Duration, replicasPerMaster: Int? = nil) throws {
        try poll(until: "the cluster to be healthy on every node", timeout: timeout, interval: .milliseconds(100)) {
            var maps: Set<[ClusterNode]> = []
            for node in nodes where node.isRunning {
                let redis = try node.connect(readTimeout: .seconds(5))
                defer { redis.close() }
                guard let info = try redis.send(["CLUSTER", "INFO"]).string, info.contains("cluster_state:ok") else {
                    return false
                }
                let map = try ClusterSlotMap(clusterSlots: try redis.send(["CLUSTER", "SLOTS"]), answeringHost: node.host)
                guard map.coveredSlots == HashSlot.count else { return false }
                if let replicasPerMaster, map.masterNodes.contains(where: { map.replicas[$0]?.count != replicasPerMaster }) {
                    return false
                }
                maps.insert(map.masterNodes)
            }
            return maps.count == 1
        }
    }

    /// The current slot map, read from a running node.
    package func slotMap() throws -> ClusterSlotMap {
        var lastError: (any Error)?
        for node in nodes where node.isRunning {
            do {
                let redis = try node.connect(readTimeout: .seconds(5))
                defer { redis.close() }
                return try ClusterSlotMap(clusterSlots: try redis.send(["CLUSTER", "SLOTS"]), answeringHost: node.host)
            } catch {
                lastError = error
            }
        }
        throw TestSupportError("no running node answered CLUSTER SLOTS: \(String(describing: lastError))")
    }

    /// Starts moving `slot` from `source` to `destination` as `redis-cli
    /// --cluster reshard` does (the destination IMPORTING, the source
    /// MIGRATING) and migrates `keys` (all in the slot) only: meanwhile the
    /// source answers `ASK` for them.
    package func startMigration(_ slot: HashSlot, from source: ClusterNode, to destination: ClusterNode, keys: [String] = []) throws {
        try withNodes(source, destination) { src, dst, sourceID, destinationID in
            _ = try dst.sendChecked(RedisCommand("CLUSTER", "SETSLOT", String(slot.value), "IMPORTING", sourceID))
            _ = try src.sendChecked(RedisCommand("CLUSTER", "SETSLOT", String(slot.value), "MIGRATING", destinationID))
            if !keys.isEmpty { try Self.migrate(keys, from: src, to: destination) }
        }
    }

    /// Migrates every key still in `slot` on `source`, then gives the slot
    /// to `destination` on every master.
    package func finishMigration(_ slot: HashSlot, from source: ClusterNode, to destination: ClusterNode) throws {
        try withNodes(source, destination) { src, _, _, destinationID in
            while true {
                let keys = (try src.sendChecked(RedisCommand("CLUSTER", "GETKEYSINSLOT", String(slot.value), "1000")).array ?? [])
                    .compactMap(\.string)
                if keys.isEmpty { break }
                try Self.migrate(keys, from: src, to: destination)
            }
            for node in try slotMap().masterNodes {
                guard let server = server(node) else { continue }
                let redis = try server.connect()
                defer { redis.close() }
                _ = try redis.sendChecked(RedisCommand("CLUSTER", "SETSLOT", String(slot.value), "NODE", destinationID))
            }
        }
    }

    /// Moves `count` slots (the lowest `source` serves), with their keys,
    /// from `source` to `destination` with `redis-cli --cluster reshard`, as
    /// an operator does. Blocks until it is done.
    package func reshard(_ count: Int, from source: ClusterNode, to destination: ClusterNode, timeout: Duration = .seconds(120)) throws {
        var sourceID = "", destinationID = ""
        try withNodes(source, destination) { _, _, sid, did in (sourceID, destinationID) = (sid, did) }
        let cli = try locateBinary("redis-cli", package: "redis-tools")
        let (status, output) = try runProcess(
            cli,
            [
                "--cluster", "reshard", source.endpoint, "--cluster-from", sourceID, "--cluster-to", destinationID,
                "--cluster-slots", String(count), "--cluster-yes",
            ],
            timeout: timeout)
        guard status == 0 else { throw TestSupportError("redis-cli --cluster reshard failed (\(status)):\n\(output.suffix(2000))") }
    }

    /// Moves `slot`, with every key in it, from `source` to `destination`.
    package func moveSlot(_ slot: HashSlot, from source: ClusterNode, to destination: ClusterNode) throws {
        try startMigration(slot, from: source, to: destination)
        try finishMigration(slot, from: source, to: destination)
    }

    private func withNodes(
        _ source: ClusterNode, _ destination: ClusterNode,
        _ body: (RedisConnection, RedisConnection, String, String) throws -> Void
    ) throws {
        guard let sourceServer = server(source), let destinationServer = server(destination) else {
            throw TestSupportError("\(source) or \(destination) is not a node of this cluster")
        }
        let src = try sourceServer.connect()
        let dst = try destinationServer.connect()
        defer { src.close(); dst.close() }
        guard let sourceID = try src.send(["CLUSTER", "MYID"]).string, let destinationID = try dst.send(["CLUSTER", "MYID"]).string else {
            throw TestSupportError("CLUSTER MYID answered no id")
        }
        try body(src, dst, sourceID, destinationID)
    }

    private static func migrate(_ keys: [String], from source: RedisConnection, to destination: ClusterNode) throws {
        var migrate = RedisCommand("MIGRATE", destination.host, String(destination.port), "", "0", "5000", "KEYS")
        for key in keys { migrate.append(key) }
        let reply = try source.sendChecked(migrate)
        guard reply == .status("OK") || reply == .status("NOKEY") else {
            throw TestSupportError("MIGRATE answered \(reply)")
        }
    }
}
