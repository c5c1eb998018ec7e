import RedisClient
import Scoring

extension ScoreStore {
    /// `member`'s whole set, ranked as SCORING.md says (score descending,
    /// then id ascending), with its meta; nil when the member has no set.
    ///
    /// All buckets and the meta are read in one `MULTI`/`EXEC` (one round
    /// trip), so the set is one writer's, never a mix. Entries that are not
    /// what the store writes are skipped and counted in
    /// ``StoredSet/corruptEntries``, never a crash or an error.
    ///
    /// A set holds N + slack entries (up to N + S + W between trims); a
    /// member's matches are the first N (SCORING.md), so the result is cut
    /// to the meta's `limit` unless `cutToLimit` is false.
    package func readSet(_ member: MemberID, shard: ShardID, cutToLimit: Bool = true) throws(ScoreStoreError) -> StoredSet? {
        try onShard(shard) { (connection) throws(RedisError) -> StoredSet? in
            guard var set = try readSet(member, on: try connection.redis(for: member)) else { return nil }
            if cutToLimit, set.meta.limit > 0, set.matches.count > set.meta.limit {
                set.matches.removeLast(set.matches.count - set.meta.limit)
            }
            return set
        }
    }

    /// One page of `member`'s ranked set: entries `offset ..< offset + limit`.
    /// An offset past the end gives an empty page (with the total).
    package func readPage(_ member: MemberID, shard: ShardID, offset: Int, limit: Int) throws(ScoreStoreError) -> SetPage? {
        guard offset >= 0, limit >= 1 else {
            throw ScoreStoreError(code: .invalidArgument, message: "a page needs offset >= 0 and limit >= 1", shard: shard)
        }
        guard let set = try readSet(member, shard: shard) else { return nil }
        let start = min(offset, set.matches.count)
        let end = min(set.matches.count, start + limit)
        return SetPage(matches: Array(set.matches[start..<end]), total: set.matches.count, meta: set.meta, corruptEntries: set.corruptEntries)
    }

    /// The score (tenths) `member`'s set holds for `other`, or nil when it
    /// holds none (or `member` has no set). One `HGET`.
    ///
    /// - Throws: ``ScoreStoreError/Code/corruptData`` when the stored value is
    ///   not a score.
    package func score(_ member: MemberID, other: MemberID, shard: ShardID) throws(ScoreStoreError) -> Int? {
        let reply = try onShard(shard) { (connection) throws(RedisError) -> RedisValue in
            let redis = try connection.redis(for: member)
            return try Self.routable(
                try redis.send(["HGET", layout.liveKey(member, bucket: layout.bucket(of: other)), String(other)]), from: redis)
        }
        switch reply {
        case .null:
            return nil
        case .bulkString(let bytes):
            guard let tenths = Score.parse(utf8: bytes) else {
                throw ScoreStoreError(code: .corruptData, message: "a stored value is not a score", shard: shard)
            }
            return tenths
        case .error:
            throw ScoreStoreError(code: .corruptData, message: "a bucket is not a hash (\(reply.errorKind ?? "error"))", shard: shard)
        default:
            throw ScoreStoreError(code: .corruptData, message: "HGET answered an unexpected reply", shard: shard)
        }
    }

    /// Which of `members` have a set on `shard` (their meta key exists): one
    /// pipelined `EXISTS` per member, in batches of ``Configuration/batchSize``.
    /// For the audit that finds sets a shard lost while MySQL still records them.
    package func existingSets(_ members: [MemberID], shard: ShardID) throws(ScoreStoreError) -> Set<MemberID> {
        var existing = Set<MemberID>()
        for start in stride(from: 0, to: members.count, by: configuration.batchSize) {
            let batch = members[start..<min(members.count, start + configuration.batchSize)]
            let members = Array(batch)
            let replies = try onShard(shard) { (connection) throws(RedisError) -> [RedisValue] in
                try Self.pipelined(members, on: connection) { member in ["EXISTS", layout.metaKey(member)] }
            }
            for (member, reply) in zip(batch, replies) where reply.int == 1 { existing.insert(member) }
        }
        return existing
    }

    /// `member`'s meta alone; nil when there is no set.
    package func readMeta(_ member: MemberID, shard: ShardID) throws(ScoreStoreError) -> SetMeta? {
        let reply = try onShard(shard) { (connection) throws(RedisError) -> RedisValue in
            try connection.redis(for: member).sendChecked(["HGETALL", layout.metaKey(member)])
        }
        return Self.parseMeta(reply)
    }

    /// The metas of `members` on `shard`, in order (nil: no set): one
    /// pipelined `HGETALL` per member in one round trip, for a batch of
    /// readers. An error reply for any member throws, as ``readMeta(_:shard:)``
    /// would for that member.
    package func readMetas(_ members: [MemberID], shard: ShardID) throws(ScoreStoreError) -> [SetMeta?] {
        guard !members.isEmpty else { return [] }
        return try onShard(shard) { (connection) throws(RedisError) -> [SetMeta?] in
            let replies = try Self.pipelined(members, on: connection) { member in ["HGETALL", layout.metaKey(member)] }
            for reply in replies {
                if case .error(let message) = reply {
                    throw RedisError.serverError(message, context: "shard \(shard)", command: "HGETALL")
                }
            }
            return replies.map(Self.parseMeta)
        }
    }

    /// One command per member, pipelined to the server holding each
    /// member's keys (every server written before any is read); the
    /// replies in the members' order. A cluster's redirection in any reply
    /// is thrown (``routable(_:from:)``), for ``onShard(_:_:)`` to retry.
    static func pipelined(
        _ members: [MemberID], on connection: ShardConnection, _ command: (MemberID) -> RedisCommand
    ) throws(RedisError) -> [RedisValue] {
        let groups = try connection.route(members)
        for group in groups {
            for index in group.indexes { group.redis.append(command(members[index])) }
            try group.redis.flush()
        }
        var replies = [RedisValue](repeating: .null, count: members.count)
        var rerouted: RedisError?
        for group in groups {
            for index in group.indexes {
                let reply = try group.redis.readReply()
                if rerouted == nil, ClusterConnection.isRoutingReply(reply) {
                    rerouted = RedisError.serverError(reply.errorMessage ?? "", context: group.redis.endpoint, command: nil)
                }
                replies[index] = reply
            }
        }
        if let rerouted { throw rerouted }
        return replies
    }

    /// `reply`, or a thrown error when it is a cluster's redirection (or
    /// cluster-state error), which ``onShard(_:_:)`` retries.
    static func routable(_ reply: RedisValue, from redis: RedisConnection) throws(RedisError) -> RedisValue {
        if ClusterConnection.isRoutingReply(reply) {
            throw RedisError.serverError(reply.errorMessage ?? "", context: redis.endpoint, command: nil)
        }
        return reply
    }

    func readSet(_ member: MemberID, on redis: RedisConnection) throws(RedisError) -> StoredSet? {
        let buckets = layout.buckets
        redis.append(["MULTI"])
        for bucket in 0..<buckets {
            redis.append(["HGETALL", layout.liveKey(member, bucket: bucket)])
        }
        redis.append(["HGETALL", layout.metaKey(member)])
        redis.append(["EXEC"])
        // +OK, B + 1 times +QUEUED, then EXEC's array.
        var queuedError: RedisValue?
        for _ in 0..<(buckets + 2) {
            let reply = try redis.readReply()
            if reply.errorMessage != nil && queuedError == nil { queuedError = reply }
        }
        // EXEC's reply is read in place: ten thousand strings for a full set,
        // parsed straight from hiredis's buffers into ranked keys.
        let parsed = try redis.readReply(inPlace: { [layout] in Self.parseSetReply($0, layout: layout) })
        if let queuedError { _ = try queuedError.checked(context: redis.endpoint) }
        switch parsed {
        case .noSet:
            return nil
        case .unexpected(let reply):
            _ = try reply.checked(context: redis.endpoint)
            throw RedisError(code: .serverError, message: "EXEC answered an unexpected reply", context: redis.endpoint, command: "EXEC")
        case .set(var keys, let meta, let corrupt):
            keys.sort()
            let matches = keys.map { Match(id: MemberID(truncatingIfNeeded: $0), tenths: 100 - Int($0 >> 32)) }
            return StoredSet(matches: matches, meta: meta, corruptEntries: corrupt)
        }
    }

    /// What EXEC's reply to ``readSet(_:on:)``'s transaction holds.
    package enum SetReply {
        /// The set's entries as ranked keys (unsorted), its meta, and the
        /// fields skipped as not what the store writes.
        case set([UInt64], SetMeta, corrupt: Int)
        case noSet
        /// An error, or a shape the store does not write.
        case unexpected(RedisValue)
    }

    /// Parses EXEC's reply (B bucket `HGETALL`s, then the meta's) in place.
    /// Whatever the shard holds, this neither traps nor allocates more than
    /// the reply's own size: the meta's `count` only sizes a reservation
    /// after being capped by the fields actually present.
    package static func parseSetReply(_ exec: UnsafeRawReply, layout: ScoreLayout) -> SetReply {
        let buckets = layout.buckets
        guard exec.kind == .array, exec.count == buckets + 1, let metaReply = exec.element(buckets) else {
            return .unexpected(exec.value)
        }
        guard let meta = Self.parseMeta(metaReply.value) else { return .noSet }
        var fieldCount = 0
        for bucket in 0..<buckets { fieldCount += exec.element(bucket)?.count ?? 0 }
        var keys: [UInt64] = []
        keys.reserveCapacity(min(max(meta.count, 0), fieldCount / 2) + 16)
        var corrupt = 0
        for bucket in 0..<buckets {
            guard let fields = exec.element(bucket), fields.kind == .array else {
                corrupt += 1  // a key of another type: WRONGTYPE inside EXEC
                continue
            }
            var index = 0
            let count = fields.count
            while index + 1 < count {
                defer { index += 2 }
                guard let field = fields.element(index), field.kind == .string,
                    let value = fields.element(index + 1), value.kind == .string,
                    let id = field.withBytes(Self.parseID), layout.bucket(of: id) == bucket,
                    let tenths = value.withBytes(Self.parseTenths)
                else {
                    corrupt += 1
                    continue
                }
                // Ranked order as one integer: score descending, then id ascending.
                keys.append(UInt64(100 - tenths) << 32 | UInt64(id))
            }
        }
        return .set(keys, meta, corrupt: corrupt)
    }

    /// A member id as the store writes it: 1 to 10 decimal digits, no
    /// leading zero, 1 ... 2^32 - 1.
    package static func parseID(_ bytes: [UInt8]) -> MemberID? {
        bytes.withUnsafeBytes(parseID)
    }

    package static func parseID(_ bytes: UnsafeRawBufferPointer) -> MemberID? {
        guard !bytes.isEmpty, bytes.count <= 10, bytes[0] != UInt8(ascii: "0") else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
        }
        return MemberID(exactly: value)
    }

    /// ``Score/parse(utf8:)`` for the only two shapes it accepts, `D.D` and
    /// `10.0`, without its generic iteration (a third of a read's client
    /// time went there). Same answers: the tests compare them.
    @inline(__always)
    package static func parseTenths(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes(parseTenths)
    }

    @inline(__always)
    package static func parseTenths(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let zero = UInt8(ascii: "0")
        if bytes.count == 3 {
            let a = bytes[0] &- zero, b = bytes[2] &- zero
            guard a < 10, b < 10, bytes[1] == UInt8(ascii: ".") else { return nil }
            return Int(a) * 10 + Int(b)
        }
        if bytes.count == 4, bytes[0] == UInt8(ascii: "1"), bytes[1] == zero, bytes[2] == UInt8(ascii: "."), bytes[3] == zero {
            return 100
        }
        return nil
    }

    /// The meta hash's `HGETALL` reply; nil when it is empty (no set).
    package static func parseMeta(_ reply: RedisValue) -> SetMeta? {
        guard let fields = reply.array, !fields.isEmpty else { return nil }
        var meta = SetMeta(answersVersion: "", generatedAt: 0, count: 0, limit: 0, floor: nil, isComplete: false, isLegacy: true, changes: 0)
        var index = 0
        while index + 1 < fields.count {
            defer { index += 2 }
            guard let name = fields[index].string, let value = fields[index + 1].string else { continue }
            switch name {
            case "stamp": meta.answersVersion = value
            case "generated_at": meta.generatedAt = Int64(value) ?? 0
            case "count": meta.count = Int(value) ?? 0
            case "limit": meta.limit = Int(value) ?? 0
            case "changes": meta.changes = Int(value) ?? 0
            case "written": meta.written = Int(value) ?? 0
            case "floor":
                meta.isLegacy = false
                meta.floor = parseFloor(value)
                meta.isComplete = value.isEmpty
            default: break
            }
        }
        return meta
    }

    /// `TENTHS:ID` as the scripts write it.
    package static func parseFloor(_ text: String) -> Match? {
        guard let colon = text.firstIndex(of: ":"),
            let tenths = Int(text[..<colon]), (0...100).contains(tenths),
            let id = MemberID(text[text.index(after: colon)...])
        else { return nil }
        return Match(id: id, tenths: tenths)
    }
}
