/// A node of a Redis Cluster, by the address clients reach it at.
package struct ClusterNode: Sendable, Hashable, Comparable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port` (`[host]:port` for IPv6), as ``RedisConnection/endpoint``.
    package var endpoint: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    package var description: String { endpoint }

    package static func < (lhs: ClusterNode, rhs: ClusterNode) -> Bool {
        (lhs.host, lhs.port) < (rhs.host, rhs.port)
    }

    /// Parses `host:port` as Redis writes it in `MOVED`/`ASK` replies and
    /// `CLUSTER NODES` (an IPv6 host unbracketed: the port follows the last
    /// colon). An empty host is `defaultHost`: the node that answered, which
    /// is how a cluster without an announced address names itself.
    package init?(address: Substring, defaultHost: String) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65_535).contains(port)
        else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.init(host: host.isEmpty ? defaultHost : host, port: port)
    }
}

/// Which node serves each hash slot: a cluster's slot map as a client knows
/// it (from `CLUSTER SLOTS`, corrected by `MOVED` replies).
///
/// A client's map may be out of date (a reshard, a failover): a command sent
/// by it to the wrong node draws `MOVED`, which names the right one.
package struct ClusterSlotMap: Sendable, Hashable {
    /// The master serving each slot; nil for a slot no node serves.
    private var masters: [ClusterNode?]
    /// Every node the map names, masters and replicas.
    package private(set) var nodes: Set<ClusterNode>
    /// Each master's replicas, as the map was read.
    package private(set) var replicas: [ClusterNode: [ClusterNode]]

    /// A map that knows no slot.
    package init() {
        masters = Array(repeating: nil, count: HashSlot.count)
        nodes = []
        replicas = [:]
    }

    /// The master serving `slot`, when the map knows one.
    package func master(for slot: HashSlot) -> ClusterNode? { masters[slot.value] }

    /// The masters, each once.
    package var masterNodes: [ClusterNode] { Array(Set(masters.compactMap { $0 })).sorted() }

    /// How many slots have a master.
    package var coveredSlots: Int { masters.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    /// Records that `node` now serves `slot` (a `MOVED` reply).
    package mutating func assign(_ slot: HashSlot, to node: ClusterNode) {
        masters[slot.value] = node
        nodes.insert(node)
    }

    /// Reads a `CLUSTER SLOTS` reply: one entry per slot range, `[start,
    /// end, master, replica...]`, each node `[host, port, id, ...]`. An empty
    /// host (or `?`) is `answeringHost`, the node that was asked.
    package init(clusterSlots reply: RedisValue, answeringHost: String) throws(ClusterError) {
        self.init()
        guard let ranges = reply.array else {
            throw ClusterError.unexpectedReply("CLUSTER SLOTS did not answer an array")
        }
        func node(_ value: RedisValue) throws(ClusterError) -> ClusterNode {
            guard let fields = value.array, fields.count >= 2, let host = fields[0].string, let port = fields[1].int,
                (1...65_535).contains(port)
            else { throw ClusterError.unexpectedReply("CLUSTER SLOTS named a node without a host and port") }
            return ClusterNode(host: host.isEmpty || host == "?" ? answeringHost : host, port: port)
        }
        for range in ranges {
            guard let fields = range.array, fields.count >= 3, let start = fields[0].int, let end = fields[1].int,
                let first = HashSlot(start), let last = HashSlot(end), first <= last
            else { throw ClusterError.unexpectedReply("CLUSTER SLOTS answered a malformed slot range") }
            let master = try node(fields[2])
            var seen: [ClusterNode] = []
            for value in fields.dropFirst(3) { seen.append(try node(value)) }
            for slot in first.value...last.value { masters[slot] = master }
            nodes.insert(master)
            nodes.formUnion(seen)
            replicas[master, default: []].append(contentsOf: seen.filter { !(replicas[master] ?? []).contains($0) })
        }
    }
}

/// A redirection a cluster node answers instead of running a command.
package enum ClusterRedirect: Sendable, Hashable {
    /// The slot lives on `node` now: update the map, send there.
    case moved(HashSlot, ClusterNode)
    /// The slot is being migrated and this key is on `node` already: send
    /// `ASKING` and the command there once, without changing the map.
    case ask(HashSlot, ClusterNode)

    /// Reads `MOVED 3999 127.0.0.1:6381` or `ASK 3999 127.0.0.1:6381`; nil
    /// for any other error message. `answeringHost` stands for an empty host.
    package init?(errorMessage: String, answeringHost: String) {
        let words = errorMessage.split(separator: " ")
        guard words.count == 3, let number = Int(words[1]), let slot = HashSlot(number),
            let node = ClusterNode(address: words[2], defaultHost: answeringHost)
        else { return nil }
        switch words[0] {
        case "MOVED": self = .moved(slot, node)
        case "ASK": self = .ask(slot, node)
        default: return nil
        }
    }
}

/// A failure of the cluster layer itself (as opposed to one node's
/// ``RedisError``).
package struct ClusterError: Error, Sendable, Hashable, CustomStringConvertible {
    package let message: String

    package init(_ message: String) { self.message = message }

    static func unexpectedReply(_ message: String) -> ClusterError { ClusterError(message) }

    package var description: String { "cluster: \(message)" }
}
