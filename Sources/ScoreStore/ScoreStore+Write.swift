import KindredSupport
import RedisClient
import Scoring

extension ScoreStore {
    /// Replaces `member`'s whole set with `matches`, atomically.
    ///
    /// A set is the exact prefix of the member's ranking down to its floor:
    /// pass a prefix of the ranking of at most N + S + W entries, the first
    /// ``Configuration/writtenSize(forLimit:member:)`` as the generator does,
    /// and `complete: true` when that is every candidate the member has
    /// (then the set has no floor: anyone who becomes a candidate belongs in
    /// it); otherwise the last match is the floor.
    ///
    /// The new set goes into temporary buckets unique to this write (they
    /// carry ``Configuration/temporaryKeyTTL``, so a writer that dies leaves
    /// nothing behind), in pipelined variadic `HSET`s of up to
    /// ``Configuration/batchSize`` pairs; then one script (``Scripts/replace``)
    /// checks that every temporary bucket is complete, `UNLINK`s each live
    /// bucket (freed off the server's main thread), renames the temporary one
    /// over it, and writes the meta (`stamp`, `generated_at`, `count`,
    /// `limit`, `floor`, `changes` + 1). Readers see the old set or the new
    /// one, never a mix. One round trip in all (plus `SCRIPT LOAD` on a new
    /// connection).
    ///
    /// - Parameters:
    ///   - matches: ranked as SCORING.md says (score descending, then id
    ///     ascending), at most N + slack of them, not including `member`.
    ///   - answersVersion: the member's answers version (decimal), returned by reads and checked by ``place(_:limit:shardOf:)``.
    ///   - limit: N: reads serve the first N.
    ///   - complete: `matches` are all the member's candidates.
    /// The shard's marker (``ensureMarker(shard:)``) is written with `SET NX`
    /// before the first set this store writes to a shard, one extra round
    /// trip per shard per process: a shard filled by `kindred backfill` or
    /// the web backend carries its marker, so the worker's shard watcher
    /// does not take it for a shard that came back empty. Each process
    /// writes it once per shard (its first set there), so the marker alone
    /// does not reveal every loss: a process that has not written to a
    /// shard yet writes a fresh marker after the shard lost its data (the
    /// `SET NX` finds none), and the watcher then sees a marker. Such a
    /// loss is still caught by the write sequence once the worker recorded
    /// one for the shard (the fresh data starts the sequence again, at or
    /// below the recorded value), and by the worker's set audit, which
    /// runs when the worker starts and rebuilds every set MySQL records
    /// that the shard lacks.
    ///
    /// - Throws: ``ScoreStoreError/Code/invalidArgument`` for unranked or
    ///   too many matches (nothing is written); transport and server errors
    ///   (the live set is then unchanged, or replaced as a whole).
    @discardableResult
    package func writeSet(
        _ member: MemberID,
        shard: ShardID,
        matches: [Match],
        answersVersion: String,
        limit: Int,
        complete: Bool,
        generatedAt: Int64 = ScoreStore.unixTime()
    ) throws(ScoreStoreError) -> WriteResult {
        try validate(member, matches: matches, limit: limit, shard: shard)
        let mark = !markedShards.contains(shard)
        let result = try onShard(shard) { (connection) throws(RedisError) -> WriteResult in
            if mark {
                _ = try connection.redis(forKey: configuration.markerKey)
                    .sendChecked(["SET", configuration.markerKey, Self.randomToken(), "NX"])
            }
            return try write(member, on: connection, matches: matches, answersVersion: answersVersion, limit: limit, complete: complete,
                             generatedAt: generatedAt, ttl: configuration.temporaryKeyTTL, replace: true)
        }
        if mark { markedShards.insert(shard) }
        return result
    }

    func validate(_ member: MemberID, matches: [Match], limit: Int, shard: ShardID) throws(ScoreStoreError) {
        guard limit >= 1 else {
            throw ScoreStoreError(code: .invalidArgument, message: "limit (N) must be at least 1", shard: shard)
        }
        let most = configuration.largestSet(forLimit: limit)
        guard matches.count <= most else {
            throw ScoreStoreError(code: .invalidArgument, message: "\(matches.count) matches exceed N + S + W (\(most))", shard: shard)
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

    /// A write whose commands are queued: what is needed to read its replies
    /// and to queue its replace again after `NOSCRIPT`.
    struct SetWrite {
        let member: MemberID
        let token: String
        let counts: [Int]
        let answersVersion: String
        let generatedAt: Int64
        let count: Int
        let limit: Int
        let floor: Match?
        /// Replies of the temporary-bucket commands (HSET, PEXPIRE).
        let replies: Int
        /// Where the change counter of a new set starts (``Scripts/replace``):
        /// random in 1 ..< 2^40, so two lifetimes of one member's set (removed,
        /// then written again) have different `written` identities with
        /// near certainty, and stay well inside Lua's exact integers (2^53).
        let counterSeed = Int.random(in: 1..<(1 << 40))
    }

    /// The write itself. With `replace: false` it stops after the temporary
    /// buckets (tests use this to play a writer that died).
    func write(
        _ member: MemberID,
        on connection: ShardConnection,
        matches: [Match],
        answersVersion: String,
        limit: Int,
        complete: Bool,
        generatedAt: Int64,
        ttl: Duration,
        replace: Bool
    ) throws(RedisError) -> WriteResult {
        let redis = try connection.redis(for: member)
        let sha = replace ? try connection.sha(of: Scripts.replace, on: redis) : ""
        var pairsSinceFlush = 0
        let write = try appendTemporary(member, on: redis, matches: matches, answersVersion: answersVersion, limit: limit,
                                        complete: complete, generatedAt: generatedAt, ttl: ttl, pairsSinceFlush: &pairsSinceFlush)
        if replace { appendReplace(write, sha: sha, on: redis) }
        return try finish(write, replace: replace, on: connection, redis: redis, reloadScript: true)!
    }

    /// Queues the temporary buckets of one write: variadic `HSET`s of up to
    /// `batchSize` pairs and a `PEXPIRE` per bucket, flushing every
    /// `batchSize` pairs.
    func appendTemporary(
        _ member: MemberID,
        on redis: RedisConnection,
        matches: [Match],
        answersVersion: String,
        limit: Int,
        complete: Bool,
        generatedAt: Int64,
        ttl: Duration,
        pairsSinceFlush: inout Int
    ) throws(RedisError) -> SetWrite {
        let buckets = layout.buckets
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
        let ttlMilliseconds = max(1, Int(ttl.wholeMilliseconds))
        let batch = configuration.batchSize
        var replies = 0
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
                replies += 1
                if first {
                    redis.append("PEXPIRE") { command in
                        command.append(key)
                        command.append(ttlMilliseconds)
                    }
                    replies += 1
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
        return SetWrite(
            member: member, token: token, counts: counts, answersVersion: answersVersion, generatedAt: generatedAt,
            count: matches.count, limit: limit, floor: complete ? nil : matches.last, replies: replies)
    }

    /// Queues the replace script of `write` (``Scripts/replace``).
    func appendReplace(_ write: SetWrite, sha: String, on redis: RedisConnection) {
        let buckets = layout.buckets
        let member = write.member
        redis.append("EVALSHA") { command in
            command.append(sha)
            command.append(2 + 2 * buckets)
            command.append(layout.metaKey(member))
            for bucket in 0..<buckets { command.append(layout.liveKey(member, bucket: bucket)) }
            for bucket in 0..<buckets { command.append(layout.temporaryKey(member, token: write.token, bucket: bucket)) }
            command.append(layout.logKey(member))
            command.append(buckets)
            command.append(write.answersVersion)
            command.append(Int(write.generatedAt))
            command.append(write.count)
            command.append(write.limit)
            command.append(write.floor.map { "\($0.tenths):\($0.id)" } ?? "")
            command.append(configuration.batchSize)
            for bucket in 0..<buckets { command.append(write.counts[bucket]) }
            command.append(write.counterSeed)
        }
    }

    /// Reads the replies of one queued write (all of them, so the connection
    /// stays usable). After `NOSCRIPT` (the script cache was flushed) it
    /// loads the script and replaces again when `reloadScript` (nothing else
    /// may be queued then), else returns nil.
    func finish(
        _ write: SetWrite, replace: Bool, on connection: ShardConnection, redis: RedisConnection, reloadScript: Bool
    ) throws(RedisError) -> WriteResult? {
        var firstError: RedisValue?
        for _ in 0..<write.replies {
            let reply = try redis.readReply()
            if reply.errorMessage != nil, firstError == nil { firstError = reply }
        }
        var replaceReply: RedisValue = .null
        if replace { replaceReply = try redis.readReply() }
        if let firstError { _ = try firstError.checked(context: redis.endpoint) }
        guard replace else { return WriteResult(count: write.count, floor: write.floor, changes: 0) }
        if replaceReply.errorKind == "NOSCRIPT" {
            guard reloadScript else { return nil }
            let sha = try connection.sha(of: Scripts.replace, on: redis, reload: true)
            appendReplace(write, sha: sha, on: redis)
            replaceReply = try redis.readReply()
        }
        return try replaceResult(write, reply: replaceReply, on: redis)
    }

    /// The replace script's reply: the new change counter, or its error.
    func replaceResult(_ write: SetWrite, reply: RedisValue, on redis: RedisConnection) throws(RedisError) -> WriteResult {
        _ = try reply.checked(context: redis.endpoint)
        guard let changes = reply.int else {
            throw RedisError(code: .serverError, message: "the replace script answered something other than an integer", context: redis.endpoint, command: "EVALSHA")
        }
        return WriteResult(count: write.count, floor: write.floor, changes: changes)
    }
}
