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

    /// One set of ``ScoreStore/writeSets(_:shard:limit:)``.
    public struct SetToWrite: Sendable {
        public var member: MemberID
        /// Ranked, at most N, not including `member`.
        public var matches: [Match]
        public var stamp: String
        public var generatedAt: Int64

        public init(member: MemberID, matches: [Match], stamp: String, generatedAt: Int64 = ScoreStore.unixTime()) {
            self.member = member
            self.matches = matches
            self.stamp = stamp
            self.generatedAt = generatedAt
        }
    }

    /// Writes many members' sets on one shard, each replaced atomically as
    /// ``writeSet(_:shard:matches:stamp:limit:generatedAt:)`` does, but
    /// pipelined across members: one round trip per ~`batchSize`-pair chunk
    /// of the whole batch instead of one per member. For bulk rebuilds
    /// (backfill, a shard that came back empty).
    ///
    /// - Returns: one result per set, in order: a server error (a temporary
    ///   bucket that expired, say) fails that set only.
    /// - Throws: ``ScoreStoreError/Code/invalidArgument`` before anything is
    ///   written when any set is invalid; a transport error, after which
    ///   each set is either replaced whole or untouched.
    public func writeSets(_ sets: [SetToWrite], shard: ShardID, limit: Int) throws(ScoreStoreError) -> [Result<WriteResult, ScoreStoreError>] {
        for set in sets { try validate(set.member, matches: set.matches, limit: limit, shard: shard) }
        let results = try onShard(shard) { (connection) throws(RedisError) -> [Result<WriteResult, ScoreStoreError>] in
            let sha = try connection.sha(of: Scripts.replace)
            var pending: [SetWrite] = []
            pending.reserveCapacity(sets.count)
            var pairsSinceFlush = 0
            for set in sets {
                let write = try appendTemporary(set.member, on: connection.redis, matches: set.matches, stamp: set.stamp, limit: limit,
                                                generatedAt: set.generatedAt, ttl: configuration.temporaryKeyTTL, pairsSinceFlush: &pairsSinceFlush)
                appendReplace(write, sha: sha, on: connection.redis)
                pending.append(write)
            }
            var results: [Result<WriteResult, ScoreStoreError>] = []
            results.reserveCapacity(pending.count)
            var missingScript: [Int] = []
            for (index, write) in pending.enumerated() {
                do throws(RedisError) {
                    if let result = try finish(write, replace: true, on: connection, reloadScript: false) {
                        results.append(.success(result))
                    } else {
                        missingScript.append(index)
                        results.append(.failure(ScoreStoreError(code: .serverError, message: "NOSCRIPT", shard: shard)))
                    }
                } catch where !error.isConnectionBroken && error.code != .connectionFailed {
                    results.append(.failure(ScoreStoreError(error, shard: shard)))
                }
            }
            if !missingScript.isEmpty {
                // The script cache was flushed meanwhile: every later reply has
                // been read, so load it again and replace those sets now.
                let sha = try connection.sha(of: Scripts.replace, reload: true)
                for index in missingScript { appendReplace(pending[index], sha: sha, on: connection.redis) }
                for index in missingScript {
                    let reply = try connection.redis.readReply()
                    results[index] = Result { () throws(RedisError) -> WriteResult in
                        try replaceResult(pending[index], reply: reply, on: connection.redis)
                    }.mapError { ScoreStoreError($0, shard: shard) }
                }
            }
            return results
        }
        for (set, result) in zip(sets, results) {
            if case .success(let written) = result, let floor = written.floor {
                floors.set(floor, of: set.member, now: clock())
            } else {
                floors.remove(set.member)
            }
        }
        return results
    }

    /// A write whose commands are queued: what is needed to read its replies
    /// and to queue its replace again after `NOSCRIPT`.
    struct SetWrite {
        let member: MemberID
        let token: String
        let counts: [Int]
        let stamp: String
        let generatedAt: Int64
        let count: Int
        let limit: Int
        let floor: Match?
        let low: String
        /// Replies of the temporary-bucket commands (HSET, PEXPIRE).
        let replies: Int
    }

    /// The write itself. With `replace: false` it stops after the temporary
    /// buckets (tests use this to play a writer that died).
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
        let sha = replace ? try connection.sha(of: Scripts.replace) : ""
        var pairsSinceFlush = 0
        let write = try appendTemporary(member, on: connection.redis, matches: matches, stamp: stamp, limit: limit,
                                        generatedAt: generatedAt, ttl: ttl, pairsSinceFlush: &pairsSinceFlush)
        if replace { appendReplace(write, sha: sha, on: connection.redis) }
        return try finish(write, replace: replace, on: connection, reloadScript: true)!
    }

    /// Queues the temporary buckets of one write: variadic `HSET`s of up to
    /// `batchSize` pairs and a `PEXPIRE` per bucket, flushing every
    /// `batchSize` pairs.
    func appendTemporary(
        _ member: MemberID,
        on redis: RedisConnection,
        matches: [Match],
        stamp: String,
        limit: Int,
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
        let ttlMilliseconds = max(1, Int(ttl.components.seconds) * 1000 + Int(ttl.components.attoseconds / 1_000_000_000_000_000))
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
            member: member, token: token, counts: counts, stamp: stamp, generatedAt: generatedAt,
            count: matches.count, limit: limit, floor: matches.count == limit ? matches.last : nil,
            low: matches.last.map { "\($0.tenths):\($0.id)" } ?? "", replies: replies)
    }

    /// Queues the replace script of `write` (``Scripts/replace``).
    func appendReplace(_ write: SetWrite, sha: String, on redis: RedisConnection) {
        let buckets = layout.buckets
        let member = write.member
        redis.append("EVALSHA") { command in
            command.append(sha)
            command.append(1 + 2 * buckets)
            command.append(layout.metaKey(member))
            for bucket in 0..<buckets { command.append(layout.liveKey(member, bucket: bucket)) }
            for bucket in 0..<buckets { command.append(layout.temporaryKey(member, token: write.token, bucket: bucket)) }
            command.append(buckets)
            command.append(write.stamp)
            command.append(Int(write.generatedAt))
            command.append(write.count)
            command.append(write.limit)
            command.append(write.low)
            command.append(configuration.batchSize)
            for bucket in 0..<buckets { command.append(write.counts[bucket]) }
        }
    }

    /// Reads the replies of one queued write (all of them, so the connection
    /// stays usable). After `NOSCRIPT` (the script cache was flushed) it
    /// loads the script and replaces again when `reloadScript` (nothing else
    /// may be queued then), else returns nil.
    func finish(_ write: SetWrite, replace: Bool, on connection: ShardConnection, reloadScript: Bool) throws(RedisError) -> WriteResult? {
        let redis = connection.redis
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
            let sha = try connection.sha(of: Scripts.replace, reload: true)
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
