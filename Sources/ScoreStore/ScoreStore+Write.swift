import RedisClient
import Scoring

extension ScoreStore {
    /// Replaces `member`'s whole set with `matches`, atomically.
    ///
    /// The new set goes into temporary buckets unique to this write (they
    /// carry ``Configuration/temporaryKeyTTL``, so a writer that dies leaves
    /// nothing behind), in pipelined variadic `HSET`s of up to
    /// ``Configuration/batchSize`` pairs; then one script (``Scripts/replace``)
    /// checks that every temporary bucket is complete, `UNLINK`s each live
    /// bucket (freed off the server's main thread), renames the temporary one
    /// over it, and writes the meta (`stamp`, `generated_at`, `count`,
    /// `limit`, `low`, `changes` + 1). Readers see the old set or the new
    /// one, never a mix. One round trip in all (plus `SCRIPT LOAD` on a new
    /// connection).
    ///
    /// - Parameters:
    ///   - matches: ranked as SCORING.md says (score descending, then id
    ///     ascending), at most `limit` of them, not including `member`.
    ///   - stamp: the caller's generation stamp, returned by reads.
    ///   - limit: N. The floor is the last match when `matches.count == limit`.
    /// - Throws: ``ScoreStoreError/Code/invalidArgument`` for unranked or
    ///   too many matches (nothing is written); transport and server errors
    ///   (the live set is then unchanged, or replaced as a whole).
    @discardableResult
    public func writeSet(
        _ member: MemberID,
        shard: ShardID,
        matches: [Match],
        stamp: String,
        limit: Int,
        generatedAt: Int64 = ScoreStore.unixTime()
    ) throws(ScoreStoreError) -> WriteResult {
        try validate(member, matches: matches, limit: limit, shard: shard)
        let result = try onShard(shard) { (connection) throws(RedisError) -> WriteResult in
            try write(member, on: connection, matches: matches, stamp: stamp, limit: limit,
                      generatedAt: generatedAt, ttl: configuration.temporaryKeyTTL, replace: true)
        }
        if let floor = result.floor {
            floors.set(floor, of: member, now: clock())
        } else {
            floors.remove(member)
        }
        return result
    }

    func validate(_ member: MemberID, matches: [Match], limit: Int, shard: ShardID) throws(ScoreStoreError) {
        guard limit >= 1 else {
            throw ScoreStoreError(code: .invalidArgument, message: "limit (N) must be at least 1", shard: shard)
        }
        guard matches.count <= limit else {
            throw ScoreStoreError(code: .invalidArgument, message: "\(matches.count) matches exceed the limit \(limit)", shard: shard)
        }
        for index in matches.indices {
            let match = matches[index]
            guard match.tenths <= 100, match.id != member else {
                throw ScoreStoreError(code: .invalidArgument, message: "match #\(index) is out of range or the member itself", shard: shard)
            }
            if index > 0, !Match.ranksBefore(matches[index - 1], match) {
                throw ScoreStoreError(code: .invalidArgument, message: "matches are not ranked (score descending, id ascending) at #\(index)", shard: shard)
            }
        }
    }

    /// The write itself. With `replace: false` it stops after the temporary
    /// buckets (tests use this to play a writer that died), returning the
    /// token in nothing but the keys.
    func write(
        _ member: MemberID,
        on connection: ShardConnection,
        matches: [Match],
        stamp: String,
        limit: Int,
        generatedAt: Int64,
        ttl: Duration,
        replace: Bool
    ) throws(RedisError) -> WriteResult {
        let redis = connection.redis
        let buckets = layout.buckets
        var sha = replace ? try connection.sha(of: Scripts.replace) : ""

        // Counting sort of the matches by bucket.
        var counts = [Int](repeating: 0, count: buckets)
        for match in matches { counts[layout.bucket(of: match.id)] += 1 }
        var starts = [Int](repeating: 0, count: buckets + 1)
        for bucket in 0..<buckets { starts[bucket + 1] = starts[bucket] + counts[bucket] }
        var next = starts
        var ordered = [Match](repeating: Match(id: 0, tenths: 0), count: matches.count)
        for match in matches {
            let bucket = layout.bucket(of: match.id)
            ordered[next[bucket]] = match
            next[bucket] += 1
        }

        let token = Self.randomToken()
        let ttlMilliseconds = max(1, Int(ttl.components.seconds) * 1000 + Int(ttl.components.attoseconds / 1_000_000_000_000_000))
        let batch = configuration.batchSize
        var expected = 0
        var pairsSinceFlush = 0
        for bucket in 0..<buckets where counts[bucket] > 0 {
            let key = layout.temporaryKey(member, token: token, bucket: bucket)
            var start = starts[bucket]
            var first = true
            while start < starts[bucket + 1] {
                let end = min(start + batch, starts[bucket + 1])
                redis.append("HSET") { command in
                    command.append(key)
                    for match in ordered[start..<end] {
                        command.append(Int(match.id))
                        command.append(fixedPoint: Int(match.tenths), fractionDigits: 1)
                    }
                }
                expected += 1
                if first {
                    redis.append("PEXPIRE") { command in
                        command.append(key)
                        command.append(ttlMilliseconds)
                    }
                    expected += 1
                    first = false
                }
                pairsSinceFlush += end - start
                start = end
                if pairsSinceFlush >= batch {
                    try redis.flush()
                    pairsSinceFlush = 0
                }
            }
        }
        let count = matches.count
        let floor = count == limit ? matches.last : nil
        let low = matches.last.map { "\($0.tenths):\($0.id)" } ?? ""
        func appendReplace() {
            redis.append("EVALSHA") { command in
                command.append(sha)
                command.append(1 + 2 * buckets)
                command.append(layout.metaKey(member))
                for bucket in 0..<buckets { command.append(layout.liveKey(member, bucket: bucket)) }
                for bucket in 0..<buckets { command.append(layout.temporaryKey(member, token: token, bucket: bucket)) }
                command.append(buckets)
                command.append(stamp)
                command.append(Int(generatedAt))
                command.append(count)
                command.append(limit)
                command.append(low)
                for bucket in 0..<buckets { command.append(counts[bucket]) }
            }
        }
        if replace {
            appendReplace()
            expected += 1
        }

        // Read every reply (so the connection stays usable), keeping the first error.
        var firstError: RedisValue?
        var replaceReply: RedisValue = .null
        for index in 0..<expected {
            let reply = try redis.readReply()
            if replace && index == expected - 1 {
                replaceReply = reply
            } else if reply.errorMessage != nil, firstError == nil {
                firstError = reply
            }
        }
        if let firstError {
            _ = try firstError.checked(context: redis.endpoint)
        }
        guard replace else { return WriteResult(count: count, floor: floor, changes: 0) }
        if replaceReply.errorKind == "NOSCRIPT" {
            // The script cache was flushed since this connection loaded it.
            sha = try connection.sha(of: Scripts.replace, reload: true)
            appendReplace()
            replaceReply = try redis.readReply()
        }
        _ = try replaceReply.checked(context: redis.endpoint)
        guard let changes = replaceReply.int else {
            throw RedisError(code: .serverError, message: "the replace script answered something other than an integer", context: redis.endpoint, command: "EVALSHA")
        }
        return WriteResult(count: count, floor: floor, changes: changes)
    }
}
