import RedisClient

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
        return try onShard(shard) { (connection) throws(RedisError) -> MarkerStatus in
            let results = connection.redis.pipeline([["SET", key, Self.randomToken(), "NX"], ["GET", key]])
            let set = try results[0].checked()
            guard let token = try results[1].checked().string else {
                throw RedisError(code: .serverError, message: "the marker vanished right after it was written", context: connection.redis.endpoint)
            }
            return MarkerStatus(token: token, wasMissing: !set.isNull)
        }
    }

    /// The shard's marker token, or nil when it is missing (the shard lost
    /// its data since ``ensureMarker(shard:)``).
    public func checkMarker(shard: ShardID) throws(ScoreStoreError) -> String? {
        let key = configuration.markerKey
        return try onShard(shard) { (connection) throws(RedisError) -> String? in
            try connection.redis.sendChecked(["GET", key]).string
        }
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
