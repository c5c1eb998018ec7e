import Foundation
import MemberStore
import RedisClient
import ScoreStore

/// What `kindred shards add`, `remove` and `list` do, over the shard list in
/// MySQL and the shards themselves. Blocking: call it from a thread of its
/// own (one MySQL connection, short-lived Redis connections).
///
/// Secrets: every address it prints or puts in an error is redacted
/// (``ShardAddress/description``).
package struct ShardAdministration {
    /// The caller's session (open: used inside a visit, or connected at once).
    package let session: StoreSession
    /// How long reaching a shard may take (connect, and each reply).
    package var timeout: Duration = .seconds(2)
    /// `host:port` to the `address:port` endpoints it resolves to; tests
    /// inject one. The default is `getaddrinfo`.
    package var resolve: @Sendable (RedisURL) throws -> Set<String> = { try $0.resolvedEndpoints() }

    package init(session: StoreSession) {
        self.session = session
    }

    var catalog: ShardCatalog { session.shards }

    // MARK: Add

    /// What ``add(_:weight:memoryBudget:allowUnreachable:)`` did.
    package struct Added: Sendable {
        package var shard: ShardInfo
        /// Why the shard could not be reached, when it was added anyway.
        package var unreachable: String?
    }

    /// Adds a shard after checking that
    /// - it is not a server and database already listed, by name or by what
    ///   the names resolve to (`redis://localhost:7101` is
    ///   `redis://127.0.0.1:7101`): the error names the existing shard;
    /// - it answers `PING` after `AUTH` and `SELECT` with the URL's
    ///   credentials and database, unless `allowUnreachable` (a shard that
    ///   is down on purpose; its name need not resolve either). Such a
    ///   shard is recorded `down`, so no member is assigned to it until
    ///   `kindred shards activate`.
    ///
    /// - Throws: ``MemberStoreError`` `invalidShardAddress`, `duplicateShard`,
    ///   `invalidShardWeight`; ``ShardAdministrationError`` `unreachable`.
    package func add(_ text: String, weight: Int = 1, memoryBudget: UInt64? = nil, allowUnreachable: Bool = false) throws -> Added {
        let address = try ShardAddress(text)
        var endpoints: Set<String> = []
        var unreachable: String?
        do {
            endpoints = try resolve(address.url)
        } catch {
            unreachable = "\(error)"
        }
        for shard in try catalog.list() where shard.address.database == address.database {
            let same = shard.address.identity == address.identity
                || (!endpoints.isEmpty && !((try? resolve(shard.address.url)) ?? []).isDisjoint(with: endpoints))
            if same {
                throw MemberStoreError(
                    .duplicateShard,
                    "\(address) is the same server and database as shard \(shard.id) (\(shard.address))")
            }
        }
        if unreachable == nil {
            do {
                try ping(address)
            } catch let error as ShardAdministrationError {
                throw error  // reachable, but not the kind of server the address says
            } catch {
                unreachable = "\(error)"
            }
        }
        if let unreachable, !allowUnreachable {
            throw ShardAdministrationError(
                .unreachable, "cannot add \(address): \(unreachable) (--allow-unreachable adds a shard that is down on purpose)")
        }
        let shard = try catalog.add(
            address: address, weight: weight, memoryBudget: memoryBudget, state: unreachable == nil ? .active : .down)
        return Added(shard: shard, unreachable: unreachable)
    }

    /// `PING` after `AUTH` and `SELECT`, within ``timeout``; and the kind
    /// of server the address says: a node of a healthy Redis Cluster for a
    /// `redis+cluster://` address (`cluster_state:ok`), a server not in
    /// cluster mode for a `redis://` one (a cluster node would redirect
    /// most of a standalone shard's keys).
    func ping(_ address: ShardAddress) throws {
        let redis = try RedisConnection(configuration: address.url.configuration(connectTimeout: timeout, readTimeout: timeout))
        defer { redis.close() }
        _ = try redis.sendChecked(["PING"])
        let info = try redis.sendChecked(["INFO", "cluster"]).string ?? ""
        let clusterEnabled = info.contains("cluster_enabled:1")
        if address.isCluster {
            guard clusterEnabled else {
                throw ShardAdministrationError(.notACluster, "\(address) is not in cluster mode: add it as redis://HOST:PORT[/DB]")
            }
            let state = try redis.sendChecked(["CLUSTER", "INFO"]).string ?? ""
            guard state.contains("cluster_state:ok") else {
                throw ShardAdministrationError(.notACluster, "the cluster of \(address) is not healthy (cluster_state is not ok)")
            }
        } else if clusterEnabled {
            throw ShardAdministrationError(
                .notACluster, "\(address) is a Redis Cluster node: add the whole cluster as one shard with --cluster")
        }
    }

    // MARK: Remove

    /// Removes a drained, empty shard: refused while the directory assigns
    /// any member to it, while it holds any set (a meta key of the score
    /// layout, found with `SCAN`), or while it cannot be reached to check
    /// (unless `allowUnreachable`). The errors say how many.
    ///
    /// The Redis server keeps Kindred's marker and sequence keys; nothing
    /// else of Kindred's is left there.
    ///
    /// - Throws: ``MemberStoreError`` `unknownShard`, `shardNotEmpty`;
    ///   ``ShardAdministrationError`` `unreachable`.
    package func remove(_ id: UInt32, allowUnreachable: Bool = false) throws -> ShardInfo {
        guard let shard = try catalog.shard(id) else { throw MemberStoreError(.unknownShard, "no shard has id \(id)") }
        if shard.assignedMembers > 0 {
            throw MemberStoreError(
                .shardNotEmpty,
                "shard \(id) still has \(shard.assignedMembers) member(s) assigned: drain it and empty it first (docs/managed-servers.md)")
        }
        do {
            let sets = try countSets(on: shard)
            if sets > 0 {
                throw MemberStoreError(
                    .shardNotEmpty,
                    "shard \(id) (\(shard.address)) still holds \(sets) set(s): empty it first (docs/managed-servers.md)")
            }
        } catch let error as ScoreStoreError {
            if !allowUnreachable {
                throw ShardAdministrationError(
                    .unreachable,
                    "cannot check that shard \(id) (\(shard.address)) holds no sets: \(error) (--allow-unreachable removes it unchecked)")
            }
        }
        try catalog.remove(id)
        return shard
    }

    /// The sets (meta keys) on a shard.
    package func countSets(on shard: ShardInfo) throws -> Int {
        let store = scoreStore([shard])
        defer { store.manager.close() }
        var count = 0
        try store.scanSetOwners(shard: shard.id) { count += $0.count }
        return count
    }

    // MARK: List

    /// One shard as `kindred shards list --json` prints it. The field names
    /// are stable (docs/managed-servers.md).
    package struct Listing: Sendable, Codable, Hashable {
        package var id: UInt32
        /// The address with the password as `***`.
        package var url: String
        package var state: String
        package var weight: Int
        /// Members the directory assigns to it.
        package var members: Int
        /// Bytes, or null.
        package var memoryBudget: UInt64?
        /// UTC, `YYYY-MM-DD HH:MM:SS.ffffff`.
        package var createdAt: String
        package var reachable: Bool
        /// `DBSIZE` of the shard's database (null when unreachable).
        package var keys: Int?
        /// `used_memory` of the server, bytes (null when unreachable).
        package var usedMemory: Int?
        /// Why it could not be reached, or null.
        package var error: String?
        /// A cluster shard's nodes (`host:port`), or null (a standalone
        /// shard, or unreachable).
        package var nodes: Nodes?

        package struct Nodes: Sendable, Hashable, Codable {
            package var masters: [String]
            package var replicas: [String]
        }

        enum CodingKeys: String, CodingKey {
            case id, url, state, weight, members
            case memoryBudget = "memory_budget"
            case createdAt = "created_at"
            case reachable, keys
            case usedMemory = "used_memory"
            case error, nodes
        }

        /// Every field, always: a missing value is `null`, never an absent key.
        package func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(url, forKey: .url)
            try container.encode(state, forKey: .state)
            try container.encode(weight, forKey: .weight)
            try container.encode(members, forKey: .members)
            try container.encode(memoryBudget, forKey: .memoryBudget)
            try container.encode(createdAt, forKey: .createdAt)
            try container.encode(reachable, forKey: .reachable)
            try container.encode(keys, forKey: .keys)
            try container.encode(usedMemory, forKey: .usedMemory)
            try container.encode(error, forKey: .error)
            try container.encode(nodes, forKey: .nodes)
        }
    }

    /// Every shard with its live size (each shard asked once, within ``timeout``).
    package func list() throws -> [Listing] {
        let shards = try catalog.list()
        let store = scoreStore(shards)
        defer { store.manager.close() }
        return shards.map { shard in
            var listing = Listing(
                id: shard.id, url: shard.address.description, state: shard.state.rawValue, weight: shard.weight,
                members: shard.assignedMembers, memoryBudget: shard.memoryBudget, createdAt: shard.createdAt,
                reachable: false, keys: nil, usedMemory: nil, error: nil, nodes: nil)
            do {
                let stats = try store.shardStats(shard: shard.id)
                listing.reachable = true
                listing.keys = stats.keys
                listing.usedMemory = stats.usedMemory
                if let nodes = try store.clusterNodes(shard: shard.id) {
                    listing.nodes = Listing.Nodes(masters: nodes.masters.map(\.endpoint), replicas: nodes.replicas.map(\.endpoint))
                }
            } catch {
                listing.error = "\(error)"
            }
            return listing
        }
    }

    /// `list()` as a JSON array, keys sorted, one line.
    package static func json(_ listings: [Listing]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(listings), as: UTF8.self)
    }

    private func scoreStore(_ shards: [ShardInfo]) -> ScoreStore {
        var configuration = ShardConnectionManager.Configuration()
        configuration.connectTimeout = timeout
        configuration.readTimeout = timeout
        configuration.maxConnectionsPerShard = 1
        let manager = ShardConnectionManager(
            shards: shards.map { ShardEndpoint(id: $0.id, address: $0.address.url, isCluster: $0.address.isCluster) }, configuration: configuration)
        return ScoreStore(manager: manager)
    }
}

/// A refusal of ``ShardAdministration`` that is not the catalog's.
package struct ShardAdministrationError: Error, Sendable, CustomStringConvertible {
    package enum Code: Sendable, Hashable {
        /// The shard could not be reached (or its name resolved) to check it.
        case unreachable
        /// A `redis+cluster://` address that is no healthy cluster's node, or
        /// a `redis://` address that is a cluster's node.
        case notACluster
    }

    package let code: Code
    package let message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { message }
}
