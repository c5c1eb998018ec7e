import MariaDBClient
import Scoring

/// A member whose set `kindred evict` dropped, and the shards it may be on.
package struct Eviction: Sendable, Hashable {
    package var member: MemberID
    /// The shard they were assigned to.
    package var shard: UInt32?
    /// The shard their generation was recorded on, when different.
    package var generationShard: UInt32?

    package init(member: MemberID, shard: UInt32?, generationShard: UInt32?) {
        self.member = member
        self.shard = shard
        self.generationShard = generationShard
    }

    /// Every shard that may hold the member's set.
    package var shards: [UInt32] {
        var shards: [UInt32] = []
        if let shard { shards.append(shard) }
        if let generationShard, generationShard != shard { shards.append(generationShard) }
        return shards
    }
}

/// The MySQL side of evicting dormant members (`evictions`): their
/// generation bookkeeping and shard assignment go, and a row remembers the
/// eviction so the repair sweep leaves them alone until they are active
/// again (``GenerationStore/repairCandidates(activeSince:after:limit:)``).
package struct EvictionStore {
    @_spi(Testing) public let connection: MariaDBConnection

    /// Members per statement (one `IN` list shape).
    package static let chunkSize = 1000

    @_spi(Testing) public init(connection: MariaDBConnection) {
        self.connection = connection
    }

    /// Evicts those of `members` (at most ``chunkSize``) that are live,
    /// still dormant (`last_active` before `dormantBefore`, or never active)
    /// and hold a shard or a generation, in one transaction: records the
    /// eviction at `evictedAt` (Unix seconds) for `run`, forgets their
    /// generation, releases their assignment. Returns them with the shards
    /// whose sets the caller must now remove; the others (active again,
    /// deleted, nothing stored) are left untouched.
    ///
    /// The rows are read `FOR UPDATE`, so a login that commits meanwhile
    /// either lands first (the member is no longer dormant and is skipped)
    /// or waits for this transaction.
    package func evict(_ members: [MemberID], dormantBefore: Int64, evictedAt: Int64, run: UInt32?) throws -> [Eviction] {
        precondition(members.count <= Self.chunkSize, "evict at most \(Self.chunkSize) members at once")
        guard !members.isEmpty else { return [] }
        return try connection.transaction { connection in
            var parameters = Self.padded(members)
            parameters.append(.int(dormantBefore))
            let evictions = try connection.query(
                """
                SELECT m.id, ms.shard_id, g.shard_id FROM members m
                LEFT JOIN member_shards ms ON ms.member_id = m.id
                LEFT JOIN generations g ON g.member_id = m.id
                WHERE m.id IN (\(Self.placeholders)) AND m.deleted = 0
                  AND (m.last_active < ? OR m.last_active IS NULL)
                  AND (ms.member_id IS NOT NULL OR g.member_id IS NOT NULL)
                ORDER BY m.id FOR UPDATE
                """, parameters
            ).map { row in
                let shard = row.isNull(1) ? nil : UInt32(truncatingIfNeeded: row.uint(1) ?? 0)
                let generationShard = row.isNull(2) ? nil : UInt32(truncatingIfNeeded: row.uint(2) ?? 0)
                return Eviction(
                    member: MemberID(truncatingIfNeeded: row.uint(0) ?? 0), shard: shard,
                    generationShard: generationShard == shard ? nil : generationShard)
            }
            guard !evictions.isEmpty else { return [] }
            var values: [SQLValue] = []
            for eviction in evictions {
                values += [
                    .uint(UInt64(eviction.member)), eviction.shard.map { .uint(UInt64($0)) } ?? .null,
                    eviction.generationShard.map { .uint(UInt64($0)) } ?? .null, .int(evictedAt),
                    run.map { .uint(UInt64($0)) } ?? .null,
                ]
            }
            try connection.insert(Self.recordShape, values: values)
            let ids = Self.padded(evictions.map(\.member))
            try connection.execute("DELETE FROM generations WHERE member_id IN (\(Self.placeholders))", ids)
            try connection.execute("DELETE FROM member_shards WHERE member_id IN (\(Self.placeholders))", ids)
            return evictions
        }
    }

    /// Evictions whose sets the shards have not confirmed removed, for
    /// members above `after` who have had no set since (no assignment, no
    /// generation), ascending: an evict stopped between MySQL and the shard,
    /// or a shard that failed, is finished by the next evict (a resumed run
    /// or a new one).
    package func unclearedEvictions(after: MemberID, limit: Int = 10_000) throws -> [Eviction] {
        try connection.query(
            """
            SELECT e.member_id, e.shard_id, e.generation_shard_id FROM evictions e
            WHERE e.cleared = 0 AND e.member_id > ?
              AND NOT EXISTS (SELECT 1 FROM member_shards ms WHERE ms.member_id = e.member_id)
              AND NOT EXISTS (SELECT 1 FROM generations g WHERE g.member_id = e.member_id)
            ORDER BY e.member_id LIMIT ?
            """, [.uint(UInt64(after)), SQLValue(limit)]
        ).map { row in
            Eviction(
                member: MemberID(truncatingIfNeeded: row.uint(0) ?? 0),
                shard: row.isNull(1) ? nil : UInt32(truncatingIfNeeded: row.uint(1) ?? 0),
                generationShard: row.isNull(2) ? nil : UInt32(truncatingIfNeeded: row.uint(2) ?? 0))
        }
    }

    /// Records that the shards no longer hold these members' sets (at most ``chunkSize``).
    package func markCleared(_ members: [MemberID]) throws {
        precondition(members.count <= Self.chunkSize)
        guard !members.isEmpty else { return }
        try connection.execute("UPDATE evictions SET cleared = 1 WHERE member_id IN (\(Self.placeholders))", Self.padded(members))
    }

    /// Live members whose set an eviction dropped and who have no set since.
    package func evictedCount() throws -> Int {
        let row = try connection.query(
            """
            SELECT COUNT(*) FROM evictions e JOIN members m ON m.id = e.member_id AND m.deleted = 0
            LEFT JOIN generations g ON g.member_id = e.member_id WHERE g.member_id IS NULL
            """
        ).first
        return Int(row?.int(0) ?? 0)
    }

    /// The member's eviction, if any.
    package func eviction(of member: MemberID) throws -> (eviction: Eviction, evictedAt: Int64)? {
        try connection.query(
            "SELECT member_id, shard_id, generation_shard_id, evicted_at FROM evictions WHERE member_id = ?",
            [.uint(UInt64(member))]
        ).first.map { row in
            (
                Eviction(
                    member: member, shard: row.isNull(1) ? nil : UInt32(truncatingIfNeeded: row.uint(1) ?? 0),
                    generationShard: row.isNull(2) ? nil : UInt32(truncatingIfNeeded: row.uint(2) ?? 0)),
                row.int(3) ?? 0
            )
        }
    }

    static let placeholders = Array(repeating: "?", count: chunkSize).joined(separator: ",")

    /// `ids` as exactly ``chunkSize`` values, the last repeated (one statement shape).
    static func padded(_ ids: [MemberID]) -> [SQLValue] {
        var values = ids.map { SQLValue.uint(UInt64($0)) }
        while values.count < chunkSize { values.append(values[values.count - 1]) }
        return values
    }

    /// A member evicted again keeps only the latest eviction.
    static let recordShape = BatchInsert(
        "INSERT INTO evictions (member_id, shard_id, generation_shard_id, evicted_at, run_id) VALUES",
        columnsPerRow: 5,
        suffix: """
             ON DUPLICATE KEY UPDATE shard_id = VALUES(shard_id), generation_shard_id = VALUES(generation_shard_id),
              evicted_at = VALUES(evicted_at), run_id = VALUES(run_id), cleared = 0
            """)
}
