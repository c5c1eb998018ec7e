import RedisClient
import Scoring

extension ScoreStore {
    /// Removes `member`'s whole set: every bucket, the meta and the change
    /// log, with one `UNLINK` (freed off the server's main thread). Returns false when
    /// there was nothing to remove.
    @discardableResult
    public func removeSet(_ member: MemberID, shard: ShardID) throws(ScoreStoreError) -> Bool {
        let removed = try onShard(shard) { (connection) throws(RedisError) -> Int in
            var command = RedisCommand("UNLINK", reservingCapacity: 32 * (layout.buckets + 2))
            for key in layout.setKeys(member) { command.append(key) }
            return try connection.redis.sendChecked(command).int ?? 0
        }
        return removed > 0
    }

    /// Removes the whole sets of `members` on `shard` (evicting dormant
    /// members): one `UNLINK` per member (buckets, meta, change log), pipelined in batches of
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
                        for key in layout.setKeys(member) { command.append(key) }
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
        }
        return removed
    }
}
