import RedisClient
import Scoring

extension ScoreStore {
    /// What ``ScoreStore/removeEntries(of:from:shardOf:)`` did.
    public struct RemovalStats: Sendable, Hashable {
        /// Sets that held the member and no longer do.
        public var removed = 0
        /// Sets that did not hold the member (or do not exist).
        public var absent = 0
        /// Targets with no shard.
        public var noShard = 0
        /// Targets whose shard failed (see ``errors``).
        public var failed = 0
        public var errors: [ScoreStoreError] = []
    }

    /// Removes `member`'s whole set: every bucket and the meta, with one
    /// `UNLINK` (freed off the server's main thread). Returns false when
    /// there was nothing to remove.
    @discardableResult
    public func removeSet(_ member: MemberID, shard: ShardID) throws(ScoreStoreError) -> Bool {
        let removed = try onShard(shard) { (connection) throws(RedisError) -> Int in
            var command = RedisCommand("UNLINK", reservingCapacity: 32 * (layout.buckets + 1))
            for key in layout.liveKeys(member) { command.append(key) }
            command.append(layout.metaKey(member))
            return try connection.redis.sendChecked(command).int ?? 0
        }
        floors.remove(member)
        return removed > 0
    }

    /// Removes the whole sets of `members` on `shard` (evicting dormant
    /// members): one `UNLINK` per member, pipelined in batches of
    /// ``Configuration/batchSize`` commands. Returns how many had a set.
    @discardableResult
    public func removeSets(_ members: [MemberID], shard: ShardID) throws(ScoreStoreError) -> Int {
        var removed = 0
        for start in stride(from: 0, to: members.count, by: configuration.batchSize) {
            let batch = members[start..<min(members.count, start + configuration.batchSize)]
            removed += try onShard(shard) { (connection) throws(RedisError) -> Int in
                let redis = connection.redis
                for member in batch {
                    redis.append("UNLINK") { command in
                        for key in layout.liveKeys(member) { command.append(key) }
                        command.append(layout.metaKey(member))
                    }
                }
                try redis.flush()
                var removed = 0
                var failure: RedisValue?
                for _ in batch {
                    let reply = try redis.readReply()
                    if let count = reply.int {
                        if count > 0 { removed += 1 }
                    } else if failure == nil {
                        failure = reply
                    }
                }
                if let failure { _ = try failure.checked(context: redis.endpoint) }
                return removed
            }
            for member in batch { floors.remove(member) }
        }
        return removed
    }

    /// Removes `member` from each of `targets`' sets (when `member` deletes
    /// their account): `HDEL` on the right bucket, `count` down and
    /// `changes` up when it was there, one atomic script per target, grouped
    /// by shard and pipelined. A failing shard does not stop the others.
    public func removeEntries(of member: MemberID, from targets: [MemberID], shardOf: (MemberID) -> ShardID?) -> RemovalStats {
        var stats = RemovalStats()
        var byShard: [ShardID: [MemberID]] = [:]
        for target in targets {
            floors.remove(target)
            guard let shard = shardOf(target) else {
                stats.noShard += 1
                continue
            }
            byShard[shard, default: []].append(target)
        }
        let memberText = String(member)
        let bucket = layout.bucket(of: member)
        for (shard, ids) in byShard.sorted(by: { $0.key < $1.key }) {
            var done = 0
            do throws(ScoreStoreError) {
                try onShard(shard) { (connection) throws(RedisError) in
                    let redis = connection.redis
                    var sha = try connection.sha(of: Scripts.removeEntry)
                    while done < ids.count {
                        var batch = Array(ids[done..<min(ids.count, done + configuration.batchSize)])
                        var attempt = 0
                        while !batch.isEmpty {
                            attempt += 1
                            for target in batch {
                                redis.append("EVALSHA") { command in
                                    command.append(sha)
                                    command.append(2)
                                    command.append(layout.metaKey(target))
                                    command.append(layout.liveKey(target, bucket: bucket))
                                    command.append(memberText)
                                }
                            }
                            try redis.flush()
                            hooks.flushed(shard)
                            var again: [MemberID] = []
                            var failure: RedisValue?
                            for target in batch {
                                let reply = try redis.readReply()
                                if reply.errorKind == "NOSCRIPT" && attempt == 1 {
                                    again.append(target)
                                } else if let removed = reply.int {
                                    if removed == 1 { stats.removed += 1 } else { stats.absent += 1 }
                                } else if failure == nil {
                                    failure = reply
                                }
                            }
                            if let failure { _ = try failure.checked(context: redis.endpoint) }
                            if !again.isEmpty { sha = try connection.sha(of: Scripts.removeEntry, reload: true) }
                            done += batch.count - again.count
                            batch = again
                        }
                    }
                }
            } catch {
                stats.failed += ids.count - done
                stats.errors.append(error)
            }
        }
        return stats
    }
}
