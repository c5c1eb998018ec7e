import RedisClient
import Scoring

extension ScoreStore {
    /// What one ``ScoreStore/offer(from:entries:limit:shardOf:)`` did.
    public struct OfferStats: Sendable, Hashable {
        /// Entries given.
        public var offered = 0
        /// Offers sent to a shard (the rest were skipped before any I/O).
        public var sent = 0
        /// Not sent: the target's set is full and its known floor ranks at
        /// or above the offer.
        public var skippedByFloor = 0
        /// Added to the target's set.
        public var entered = 0
        /// The target's set held the member with another score: updated.
        public var updated = 0
        /// The target's set held the member with this very score.
        public var unchanged = 0
        /// The target's set is full and the offer does not beat its floor.
        public var refused = 0
        /// The target has no live set (nothing written), or no shard.
        public var noSet = 0
        /// Entries trimmed from targets' sets by these offers.
        public var trimmed = 0
        /// Offers whose outcome is unknown: their shard failed (see ``errors``).
        public var failed = 0
        /// One error per shard that failed.
        public var errors: [ScoreStoreError] = []

        public init() {}

        public static func + (a: OfferStats, b: OfferStats) -> OfferStats {
            var sum = a
            sum.offered += b.offered; sum.sent += b.sent; sum.skippedByFloor += b.skippedByFloor
            sum.entered += b.entered; sum.updated += b.updated; sum.unchanged += b.unchanged
            sum.refused += b.refused; sum.noSet += b.noSet; sum.trimmed += b.trimmed
            sum.failed += b.failed; sum.errors += b.errors
            return sum
        }
    }

    /// Offers `member`'s score into each target's live set (the reciprocal
    /// update after `member`'s own set was written).
    ///
    /// Each entry is a target (`id`) and the pair's score (`tenths`). Per
    /// target, atomically (``Scripts/offer``): no set, skip; `member` already
    /// there, update; set not full (fewer than `limit` entries), add; full,
    /// add only if `member` beats the floor, else refuse. A set that grows
    /// past `limit + slack` is trimmed back to `limit` in the same script.
    ///
    /// An offer that cannot enter a full set costs no round trip when its
    /// floor is known: floors come back in every reply and from whole-set
    /// writes, and are trusted for ``Configuration/floorCacheTTL``.
    ///
    /// Offers are grouped by shard (`shardOf`; nil: no shard, counted as no
    /// set) and pipelined in batches of ``Configuration/batchSize``. A shard
    /// that fails does not stop the others: its offers count as
    /// ``OfferStats/failed``, with its error in ``OfferStats/errors``.
    public func offer(
        from member: MemberID,
        entries: [Match],
        limit: Int,
        shardOf: (MemberID) -> ShardID?
    ) -> OfferStats {
        var stats = OfferStats()
        stats.offered = entries.count
        guard limit >= 1 else {
            stats.failed = entries.count
            stats.errors.append(ScoreStoreError(code: .invalidArgument, message: "limit (N) must be at least 1"))
            return stats
        }
        let now = clock()
        var byShard: [ShardID: [Match]] = [:]
        for entry in entries {
            guard entry.id != member, entry.tenths <= 100 else {
                stats.failed += 1
                continue
            }
            if let floor = floors.floor(of: entry.id, now: now),
                !Match(id: member, tenths: Int(entry.tenths)).beats(floor)
            {
                stats.skippedByFloor += 1
                continue
            }
            guard let shard = shardOf(entry.id) else {
                stats.noSet += 1
                continue
            }
            byShard[shard, default: []].append(entry)
        }
        if stats.failed > 0 {
            stats.errors.append(ScoreStoreError(code: .invalidArgument, message: "\(stats.failed) entries were the member itself or out of range"))
        }
        for (shard, targets) in byShard.sorted(by: { $0.key < $1.key }) {
            stats = stats + offer(from: member, targets: targets, limit: limit, shard: shard)
        }
        return stats
    }

    /// The offers of one shard, in pipelined batches.
    private func offer(from member: MemberID, targets: [Match], limit: Int, shard: ShardID) -> OfferStats {
        var stats = OfferStats()
        var done = 0  // targets whose reply was read; survives a retry on a fresh connection
        let slack = configuration.slack(forLimit: limit)
        let buckets = layout.buckets
        let memberText = String(member)
        let bucketOfMember = layout.bucket(of: member)
        do throws(ScoreStoreError) {
            try onShard(shard) { (connection) throws(RedisError) in
                let redis = connection.redis
                var sha = try connection.sha(of: Scripts.offer)
                func append(_ target: Match) {
                    redis.append("EVALSHA") { command in
                        command.append(sha)
                        command.append(2)
                        command.append(layout.metaKey(target.id))
                        command.append(layout.liveKey(target.id, bucket: bucketOfMember))
                        command.append(memberText)
                        command.append(fixedPoint: Int(target.tenths), fractionDigits: 1)
                        command.append(Int(target.tenths))
                        command.append(limit)
                        command.append(slack)
                        command.append(buckets)
                        command.append(layout.prefix(target.id))
                    }
                }
                while done < targets.count {
                    let batch = targets[done..<min(targets.count, done + configuration.batchSize)]
                    for target in batch { append(target) }
                    try redis.flush()
                    hooks.flushed(shard)
                    var missingScript: [Match] = []
                    for target in batch {
                        let reply = try redis.readReply()
                        if reply.errorKind == "NOSCRIPT" {
                            missingScript.append(target)
                        } else {
                            record(reply, target: target, limit: limit, into: &stats)
                        }
                    }
                    if !missingScript.isEmpty {
                        // The script cache was flushed: load again and resend
                        // those (the server ran none of them).
                        sha = try connection.sha(of: Scripts.offer, reload: true)
                        for target in missingScript { append(target) }
                        for target in missingScript {
                            record(try redis.readReply(), target: target, limit: limit, into: &stats)
                        }
                    }
                    done += batch.count
                    stats.sent += batch.count
                }
            }
        } catch {
            stats.failed += targets.count - done
            stats.errors.append(error)
        }
        return stats
    }

    /// Counts one offer's reply and learns the target's floor from it.
    private func record(_ reply: RedisValue, target: Match, limit: Int, into stats: inout OfferStats) {
        guard let fields = reply.array, fields.count == 5,
            let code = fields[0].int, let count = fields[1].int, let lowTenths = fields[2].int,
            let lowID = fields[3].int, let trimmed = fields[4].int
        else {
            stats.failed += 1
            if stats.errors.count < 8 {
                let kind = reply.errorKind ?? "unexpected reply"
                stats.errors.append(ScoreStoreError(code: reply.errorKind == nil ? .corruptData : .serverError,
                                                    message: "an offer failed: \(kind)"))
            }
            return
        }
        switch code {
        case 0: stats.noSet += 1
        case 1: stats.entered += 1
        case 2: stats.updated += 1
        case 3: stats.refused += 1
        default: stats.unchanged += 1
        }
        stats.trimmed += trimmed
        if code != 0, count >= limit, (0...100).contains(lowTenths), let id = MemberID(exactly: lowID) {
            floors.set(Match(id: id, tenths: lowTenths), of: target.id, now: clock())
        } else {
            floors.remove(target.id)
        }
    }
}
