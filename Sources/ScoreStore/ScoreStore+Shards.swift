import RedisClient
import Scoring

extension ScoreStore {
    /// A shard's marker after ``ScoreStore/ensureMarker(shard:)``.
    public struct MarkerStatus: Sendable, Hashable {
        /// The marker's token now on the shard.
        public var token: String
        /// True when the marker was missing and has just been written: the
        /// shard is new, or came back empty (restarted without persistence,
        /// flushed, replaced), so every set it held is gone.
        public var wasMissing: Bool
    }

    /// A shard's size, for `kindred shards list`.
    public struct ShardStats: Sendable, Hashable {
        /// `DBSIZE`.
        public var keys: Int
        /// `used_memory` from `INFO memory`, bytes.
        public var usedMemory: Int
    }

    /// Writes the shard's marker (a random token under
    /// ``Configuration/markerKey``) if it is missing, and says whether it
    /// was. One round trip (`SET NX` and `GET`, pipelined).
    public func ensureMarker(shard: ShardID) throws(ScoreStoreError) -> MarkerStatus {
        let key = configuration.markerKey
        let status = try onShard(shard) { (connection) throws(RedisError) -> MarkerStatus in
            let results = connection.redis.pipeline([["SET", key, Self.randomToken(), "NX"], ["GET", key]])
            let set = try results[0].checked()
            guard let token = try results[1].checked().string else {
                throw RedisError(code: .serverError, message: "the marker vanished right after it was written", context: connection.redis.endpoint)
            }
            return MarkerStatus(token: token, wasMissing: !set.isNull)
        }
        markedShards.insert(shard)
        return status
    }

    /// The shard's marker token, or nil when it is missing (the shard lost
    /// its data since ``ensureMarker(shard:)``).
    public func checkMarker(shard: ShardID) throws(ScoreStoreError) -> String? {
        let key = configuration.markerKey
        return try onShard(shard) { (connection) throws(RedisError) -> String? in
            try connection.redis.sendChecked(["GET", key]).string
        }
    }

    /// Advances the shard's sequence (`INCR` of ``Configuration/markerKey``
    /// + `:sequence`) and returns it. The watcher records the highest value
    /// it saw in MySQL: a shard that answers with a value at or below it
    /// was restored from an older copy of its data (a restart from an old
    /// RDB file keeps the marker but loses every change since the copy).
    public func advanceSequence(shard: ShardID) throws(ScoreStoreError) -> Int {
        let key = configuration.markerKey + ":sequence"
        return try onShard(shard) { (connection) throws(RedisError) -> Int in
            guard let value = try connection.redis.sendChecked(["INCR", key]).int else {
                throw RedisError(code: .serverError, message: "INCR answered something other than an integer", context: connection.redis.endpoint, command: "INCR")
            }
            return value
        }
    }

    /// Every member with a set's meta on the shard (`SCAN` for meta keys),
    /// page by page: `body` gets each page of ids. For the audit that finds
    /// sets a shard holds for members it no longer owns.
    public func scanSetOwners(shard: ShardID, pageSize: Int = 1000, _ body: ([MemberID]) throws -> Void) throws {
        var cursor = "0"
        repeat {
            let reply = try onShard(shard) { (connection) throws(RedisError) -> RedisValue in
                try connection.redis.sendChecked(["SCAN", cursor, "MATCH", "scores:{*}:meta", "COUNT", String(pageSize)])
            }
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
        } while cursor != "0"
    }

    /// The shard's key count and used memory.
    public func shardStats(shard: ShardID) throws(ScoreStoreError) -> ShardStats {
        try onShard(shard) { (connection) throws(RedisError) -> ShardStats in
            let results = connection.redis.pipeline([["DBSIZE"], ["INFO", "memory"]])
            let keys = try results[0].checked().int ?? 0
            let info = try results[1].checked().string ?? ""
            return ShardStats(keys: keys, usedMemory: Self.infoField("used_memory", in: info) ?? 0)
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
