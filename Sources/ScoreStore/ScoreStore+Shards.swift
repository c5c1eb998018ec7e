import RedisClient
import Scoring

extension ScoreStore {
    /// A shard's marker after ``ScoreStore/ensureMarker(shard:)``.
    package struct MarkerStatus: Sendable, Hashable {
        /// The marker's token now on the shard.
        package var token: String
        /// True when the marker was missing and has just been written: the
        /// shard is new, or came back empty (restarted without persistence,
        /// flushed, replaced), so every set it held is gone.
        package var wasMissing: Bool
    }

    /// A shard's size, for `kindred shards list`.
    package struct ShardStats: Sendable, Hashable {
        /// `DBSIZE`.
        package var keys: Int
        /// `used_memory` from `INFO memory`, bytes.
        package var usedMemory: Int
    }

    /// Writes the shard's marker (a random token under
    /// ``Configuration/markerKey``) if it is missing, and says whether it
    /// was. One round trip (`SET NX` and `GET`, pipelined).
    package func ensureMarker(shard: ShardID) throws(ScoreStoreError) -> MarkerStatus {
        let key = configuration.markerKey
        let status = try onShard(shard) { (connection) throws(RedisError) -> MarkerStatus in
            let redis = try connection.redis(forKey: key)
            let results = redis.pipeline([["SET", key, Self.randomToken(), "NX"], ["GET", key]])
            let set = try Self.routable(try results[0].get(), from: redis).checked(context: redis.endpoint)
            guard let token = try Self.routable(try results[1].get(), from: redis).checked(context: redis.endpoint).string else {
                throw RedisError(code: .serverError, message: "the marker vanished right after it was written", context: redis.endpoint)
            }
            return MarkerStatus(token: token, wasMissing: !set.isNull)
        }
        markedShards.insert(shard)
        return status
    }

    /// The shard's marker token, or nil when it is missing (the shard lost
    /// its data since ``ensureMarker(shard:)``).
    package func checkMarker(shard: ShardID) throws(ScoreStoreError) -> String? {
        let key = configuration.markerKey
        return try onShard(shard) { (connection) throws(RedisError) -> String? in
            try connection.redis(forKey: key).sendChecked(["GET", key]).string
        }
    }

    /// Advances the shard's sequence (`INCR` of ``Configuration/markerKey``
    /// + `:sequence`) and returns it. The watcher records the highest value
    /// it saw in MySQL: a shard that answers with a value at or below it
    /// was restored from an older copy of its data (a restart from an old
    /// RDB file keeps the marker but loses every change since the copy).
    package func advanceSequence(shard: ShardID) throws(ScoreStoreError) -> Int {
        let key = configuration.markerKey + ":sequence"
        return try onShard(shard) { (connection) throws(RedisError) -> Int in
            let redis = try connection.redis(forKey: key)
            guard let value = try redis.sendChecked(["INCR", key]).int else {
                throw RedisError(code: .serverError, message: "INCR answered something other than an integer", context: redis.endpoint, command: "INCR")
            }
            return value
        }
    }

    /// Every member with a set's meta on the shard (`SCAN` for meta keys;
    /// on a cluster, each master in turn), page by page: `body` gets each
    /// page of ids. For the audit that finds sets a shard holds for members
    /// it no longer owns. A cluster resharded during the scan may have a
    /// set listed twice or not at all: the audit runs again.
    package func scanSetOwners(shard: ShardID, pageSize: Int = 1000, _ body: ([MemberID]) throws -> Void) throws {
        var server = 0
        var cursor = "0"
        while true {
            let (reply, servers) = try onShard(shard) { (connection) throws(RedisError) -> (RedisValue?, Int) in
                let servers = try connection.servers()
                guard server < servers.count else { return (nil, servers.count) }
                let scan = try servers[server].sendChecked(["SCAN", cursor, "MATCH", "scores:{*}:meta", "COUNT", String(pageSize)])
                return (scan, servers.count)
            }
            guard let reply else { return }
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                throw ScoreStoreError(code: .corruptData, message: "SCAN answered an unexpected reply", shard: shard)
            }
            cursor = next
            var ids: [MemberID] = []
            for key in keys {
                guard let text = key.string, let id = layout.owner(ofMetaKey: text) else { continue }
                ids.append(id)
            }
            if !ids.isEmpty { try body(ids) }
            if cursor == "0" {
                server += 1
                if server >= servers { return }
            }
        }
    }

    /// The shard's key count and used memory (on a cluster, summed over
    /// the masters).
    package func shardStats(shard: ShardID) throws(ScoreStoreError) -> ShardStats {
        try onShard(shard) { (connection) throws(RedisError) -> ShardStats in
            var stats = ShardStats(keys: 0, usedMemory: 0)
            for server in try connection.servers() {
                let results = server.pipeline([["DBSIZE"], ["INFO", "memory"]])
                stats.keys += try results[0].checked().int ?? 0
                let info = try results[1].checked().string ?? ""
                stats.usedMemory += Self.infoField("used_memory", in: info) ?? 0
            }
            return stats
        }
    }

    /// A cluster shard's nodes as its slot map names them now: the masters
    /// and each master's replicas (read again from the cluster); nil for a
    /// standalone shard.
    package func clusterNodes(shard: ShardID) throws(ScoreStoreError) -> (masters: [ClusterNode], replicas: [ClusterNode])? {
        try onShard(shard) { (connection) throws(RedisError) -> ([ClusterNode], [ClusterNode])? in
            guard connection.isCluster else { return nil }
            connection.rerouted()
            _ = try connection.servers()  // reads the map
            guard let map = connection.slotMap else { return nil }
            let masters = map.masterNodes
            return (masters, masters.flatMap { map.replicas[$0] ?? [] })
        }
    }

    /// An integer field of an `INFO` reply (`used_memory:1234`).
    static func infoField(_ name: String, in info: String) -> Int? {
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix(name + ":") {
            return Int(line.dropFirst(name.count + 1))
        }
        return nil
    }
}
