import RedisClient
import Scoring

extension ScoreStore {
    /// Removes `member`'s whole set: every bucket, the meta and the change
    /// log, with one `UNLINK` (freed off the server's main thread). Returns false when
    /// there was nothing to remove.
    @discardableResult
    package func removeSet(_ member: MemberID, shard: ShardID) throws(ScoreStoreError) -> Bool {
        let removed = try onShard(shard) { (connection) throws(RedisError) -> Int in
            var command = RedisCommand("UNLINK", reservingCapacity: 32 * (layout.buckets + 2))
            for key in layout.setKeys(member) { command.append(key) }
            return try connection.redis(for: member).sendChecked(command).int ?? 0
        }
        return removed > 0
    }

    /// Removes the whole sets of `members` on `shard` (evicting dormant
    /// members): one `UNLINK` per member (buckets, meta, change log), pipelined in batches of
    /// ``Configuration/batchSize`` commands. Returns how many had a set.
    @discardableResult
    package func removeSets(_ members: [MemberID], shard: ShardID) throws(ScoreStoreError) -> Int {
        var removed = 0
        for start in stride(from: 0, to: members.count, by: configuration.batchSize) {
            let batch = members[start..<min(members.count, start + configuration.batchSize)]
            let members = Array(batch)
            removed += try onShard(shard) { (connection) throws(RedisError) -> Int in
                let replies = try Self.pipelined(members, on: connection) { member in
                    var command = RedisCommand("UNLINK", reservingCapacity: 32 * (layout.buckets + 2))
                    for key in layout.setKeys(member) { command.append(key) }
                    return command
                }
                var removed = 0
                for reply in replies {
                    guard let count = reply.int else {
                        _ = try reply.checked(context: "shard \(shard)")
                        throw RedisError(code: .serverError, message: "UNLINK answered something other than an integer", context: "shard \(shard)", command: "UNLINK")
                    }
                    if count > 0 { removed += 1 }
                }
                return removed
            }
        }
        return removed
    }
}
