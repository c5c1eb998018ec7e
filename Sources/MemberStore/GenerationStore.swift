import MariaDBClient
import Scoring

/// The bookkeeping of one stored score set: where it is, which answers
/// version it was computed from, when, and how many matches it holds.
package struct Generation: Sendable, Hashable {
    package var memberID: MemberID
    package var shardID: UInt32
    /// The member's ``AnswersVersion`` the set was computed from.
    package var answersVersion: UInt64
    /// Unix milliseconds.
    package var generatedAt: Int64
    package var matchCount: Int
    /// The set's floor as written: its last entry when the scan found more
    /// candidates than the set holds; nil when it holds every candidate
    /// (then anyone who becomes a candidate belongs in it).
    package var floor: Match?
    /// Every member change with `changed_at` before this time was in the
    /// scan that wrote the set (nil: unknown, as for sets written before
    /// migration 5). A member whose change is older than this needs no
    /// publication into this set.
    package var coveredAt: ServerTime?

    package init(
        memberID: MemberID, shardID: UInt32, answersVersion: UInt64, generatedAt: Int64, matchCount: Int,
        floor: Match? = nil, coveredAt: ServerTime? = nil
    ) {
        self.memberID = memberID
        self.shardID = shardID
        self.answersVersion = answersVersion
        self.generatedAt = generatedAt
        self.matchCount = matchCount
        self.floor = floor
        self.coveredAt = coveredAt
    }
}

/// What a process needs to know of a stored set to decide whether a
/// member's change can concern it, without asking its shard: where it is,
/// its floor and what its scan covered (``GenerationStore/setRecords(recordedAfter:overlap:)``).
package struct SetRecord: Sendable, Hashable {
    package var member: MemberID
    package var shard: UInt32
    /// nil: the set holds every candidate.
    package var floor: Match?
    package var coveredAt: ServerTime
    /// Unix milliseconds of the whole-set write.
    package var generatedAt: Int64

    package init(member: MemberID, shard: UInt32, floor: Match?, coveredAt: ServerTime, generatedAt: Int64) {
        self.member = member
        self.shard = shard
        self.floor = floor
        self.coveredAt = coveredAt
        self.generatedAt = generatedAt
    }
}

/// Counts for the repair sweep.
package struct GenerationCounts: Sendable, Hashable {
    /// Live members with a generation row.
    package var generated: Int
    /// Live members whose generation was computed from another answers version.
    package var stale: Int
    /// Live members with no generation row.
    package var missing: Int

    package init(generated: Int, stale: Int, missing: Int) {
        self.generated = generated
        self.stale = stale
        self.missing = missing
    }
}

/// Generation bookkeeping (`generations`): one row per member whose set is
/// stored. A set is stale when its `answers_version` differs from the
/// member's; missing when there is no row. Threads: as
/// ``MemberRepository``, one thread per connection.
package struct GenerationStore {
    @_spi(Testing) public let connection: MariaDBConnection

    @_spi(Testing) public init(connection: MariaDBConnection) {
        self.connection = connection
    }

    /// Records generations, one statement each, stamping `recorded_at`
    /// with the server's clock. When two writers race on a member, the
    /// newer `generatedAt` wins whatever the commit order.
    package func record(_ generations: some Collection<Generation>) throws {
        for generation in generations { try record(generation) }
    }

    package func record(_ generation: Generation) throws {
        try connection.execute(
            Self.recordSQL,
            [
                .uint(UInt64(generation.memberID)), .uint(UInt64(generation.shardID)), .uint(generation.answersVersion),
                .int(generation.generatedAt), SQLValue(generation.matchCount),
                generation.floor.map { .int(Int64($0.tenths)) } ?? .null,
                generation.floor.map { .uint(UInt64($0.id)) } ?? .null,
                generation.coveredAt.map { .text($0.description) } ?? .null,
            ])
    }

    /// The member's generation, or `nil`.
    package func generation(of member: MemberID) throws -> Generation? {
        try connection.query(
            "SELECT member_id, shard_id, answers_version, generated_at, match_count, floor_tenths, floor_id, "
                + "CAST(covered_at AS CHAR) FROM generations WHERE member_id = ?",
            [.uint(UInt64(member))]
        ).first.map { row in
            Generation(
                memberID: MemberID(truncatingIfNeeded: row.uint(0) ?? 0),
                shardID: UInt32(truncatingIfNeeded: row.uint(1) ?? 0), answersVersion: row.uint(2) ?? 0,
                generatedAt: row.int(3) ?? 0, matchCount: Int(row.int(4) ?? 0),
                floor: Self.floor(tenths: row.int(5), id: row.uint(6)),
                coveredAt: row.string(7).flatMap(ServerTime.init))
        }
    }

    /// The sets recorded after `after` minus `overlap` (every set when
    /// `after` is nil), and the watermark for the next call: the server's
    /// clock taken before the read. A row committed late carries a
    /// `recorded_at` before the watermark; the overlap (longer than any
    /// write transaction) catches it on the next call. `asOf`: a reading of
    /// the server's clock taken before this call (a snapshot refresh's),
    /// used as the watermark instead of reading the clock again (an earlier
    /// watermark only re-reads a little more next time).
    package func setRecords(recordedAfter after: ServerTime?, overlap: Duration = .seconds(10), asOf: ServerTime? = nil) throws
        -> (records: [SetRecord], watermark: ServerTime)
    {
        let watermark = try asOf ?? connection.serverTime()
        var records: [SetRecord] = []
        let columns = "SELECT member_id, shard_id, floor_tenths, floor_id, CAST(covered_at AS CHAR), generated_at FROM generations"
        let body: (RowView) throws -> Void = { row in
            records.append(
                SetRecord(
                    member: MemberID(truncatingIfNeeded: row.uint(0) ?? 0), shard: UInt32(truncatingIfNeeded: row.uint(1) ?? 0),
                    floor: Self.floor(tenths: row.int(2), id: row.uint(3)),
                    coveredAt: row.string(4).flatMap(ServerTime.init) ?? .distantPast, generatedAt: row.int(5) ?? 0))
        }
        if let after {
            try connection.forEachRow(columns + " WHERE recorded_at > ?", [.text((after - overlap).description)], body)
        } else {
            try connection.forEachRow(columns, [], body)
        }
        return (records, watermark)
    }

    static func floor(tenths: Int64?, id: UInt64?) -> Match? {
        guard let tenths, (0...100).contains(tenths), let id, let member = MemberID(exactly: id), member > 0 else { return nil }
        return Match(id: member, tenths: Int(tenths))
    }

    /// Forgets a member's generation (their set was removed or lost).
    package func forget(_ member: MemberID) throws {
        try connection.execute("DELETE FROM generations WHERE member_id = ?", [.uint(UInt64(member))])
    }

    /// Forgets every generation on a shard (the shard came back empty);
    /// returns how many.
    @discardableResult
    package func forgetShard(_ shard: UInt32) throws -> Int {
        Int(try connection.execute("DELETE FROM generations WHERE shard_id = ?", [.uint(UInt64(shard))]).affectedRows)
    }

    /// The generations recorded on `shard`, ascending by member, after
    /// `after`: what the audit compares with the sets the shard holds.
    package func generations(onShard shard: UInt32, after: MemberID = 0, limit: Int = 5_000) throws -> [Generation] {
        var found: [Generation] = []
        try connection.forEachRow(
            "SELECT member_id, shard_id, answers_version, generated_at, match_count, floor_tenths, floor_id, "
                + "CAST(covered_at AS CHAR) FROM generations WHERE shard_id = ? AND member_id > ? ORDER BY member_id LIMIT ?",
            [.uint(UInt64(shard)), .uint(UInt64(after)), SQLValue(limit)]
        ) { row in
            found.append(
                Generation(
                    memberID: MemberID(truncatingIfNeeded: row.uint(0) ?? 0),
                    shardID: UInt32(truncatingIfNeeded: row.uint(1) ?? 0), answersVersion: row.uint(2) ?? 0,
                    generatedAt: row.int(3) ?? 0, matchCount: Int(row.int(4) ?? 0),
                    floor: Self.floor(tenths: row.int(5), id: row.uint(6)),
                    coveredAt: row.string(7).flatMap(ServerTime.init)))
        }
        return found
    }

    /// Members whose set is recorded on `shard`, ascending, after `after`:
    /// the list to regenerate when that shard loses its data.
    package func members(onShard shard: UInt32, after: MemberID = 0, limit: Int = 10_000) throws -> [MemberID] {
        try ids(
            "SELECT member_id FROM generations WHERE shard_id = ? AND member_id > ? ORDER BY member_id LIMIT ?",
            [.uint(UInt64(shard)), .uint(UInt64(after)), SQLValue(limit)])
    }

    /// Live members whose generation was computed from another answers
    /// version, ascending, after `after`.
    package func staleIDs(after: MemberID = 0, limit: Int = 10_000) throws -> [MemberID] {
        try ids(
            "SELECT m.id FROM members m JOIN generations g ON g.member_id = m.id "
                + "WHERE m.id > ? AND m.deleted = 0 AND g.answers_version <> m.answers_version ORDER BY m.id LIMIT ?",
            [.uint(UInt64(after)), SQLValue(limit)])
    }

    /// Live members without a generation, ascending, after `after`.
    package func missingIDs(after: MemberID = 0, limit: Int = 10_000) throws -> [MemberID] {
        try ids(
            "SELECT m.id FROM members m LEFT JOIN generations g ON g.member_id = m.id "
                + "WHERE m.id > ? AND m.deleted = 0 AND g.member_id IS NULL ORDER BY m.id LIMIT ?",
            [.uint(UInt64(after)), SQLValue(limit)])
    }

    /// Live members whose set is stale or missing, ascending, after `after`:
    /// the repair sweep and `kindred enqueue --stale`.
    package func staleOrMissingIDs(after: MemberID = 0, limit: Int = 10_000) throws -> [MemberID] {
        try ids(
            "SELECT m.id FROM members m LEFT JOIN generations g ON g.member_id = m.id "
                + "WHERE m.id > ? AND m.deleted = 0 AND (g.member_id IS NULL OR g.answers_version <> m.answers_version) "
                + "ORDER BY m.id LIMIT ?",
            [.uint(UInt64(after)), SQLValue(limit)])
    }

    /// The repair sweep's work, ascending after `after`: members who should
    /// have a current set and do not. A member should have a set when they
    /// hold a shard assignment or were active at or after `activeSince`
    /// (Unix seconds); dormant members without an assignment are left to
    /// backfill and to their next login, and so are members that
    /// `kindred evict` dropped and who were not active since (`evictions`:
    /// evict releases the assignment, so only the activity clause could
    /// bring them back, which matters when evict's dormancy is shorter than
    /// the sweep's window). Included: such live members whose generation is
    /// missing, computed from another answers version, or on another shard
    /// than their assignment; and deleted members that still hold an
    /// assignment (their set must be removed).
    package func repairCandidates(activeSince: Int64, after: MemberID = 0, limit: Int = 10_000) throws -> [MemberID] {
        try ids(
            """
            SELECT m.id FROM members m
            LEFT JOIN member_shards ms ON ms.member_id = m.id
            LEFT JOIN generations g ON g.member_id = m.id
            WHERE m.id > ? AND (
              (m.deleted = 1 AND ms.member_id IS NOT NULL)
              OR (m.deleted = 0
                  AND (ms.member_id IS NOT NULL
                       OR (m.last_active >= ?
                           AND NOT EXISTS (SELECT 1 FROM evictions e WHERE e.member_id = m.id AND e.evicted_at > m.last_active)))
                  AND (g.member_id IS NULL OR g.answers_version <> m.answers_version
                       OR (ms.member_id IS NOT NULL AND g.shard_id <> ms.shard_id)))
            )
            ORDER BY m.id LIMIT ?
            """,
            [.uint(UInt64(after)), .int(activeSince), SQLValue(limit)])
    }

    /// How many live members have a current, stale or missing generation.
    package func counts() throws -> GenerationCounts {
        let row = try connection.query(
            """
            SELECT COALESCE(SUM(g.member_id IS NOT NULL), 0),
                   COALESCE(SUM(g.member_id IS NOT NULL AND g.answers_version <> m.answers_version), 0),
                   COALESCE(SUM(g.member_id IS NULL), 0)
            FROM members m LEFT JOIN generations g ON g.member_id = m.id WHERE m.deleted = 0
            """
        ).first
        return GenerationCounts(
            generated: Int(row?.int(0) ?? 0), stale: Int(row?.int(1) ?? 0), missing: Int(row?.int(2) ?? 0))
    }

    private func ids(_ sql: String, _ parameters: [SQLValue]) throws -> [MemberID] {
        var ids: [MemberID] = []
        try connection.forEachRow(sql, parameters) { ids.append(MemberID(truncatingIfNeeded: $0.uint(0) ?? 0)) }
        return ids
    }

    /// Newest wins: `generated_at` is assigned last, so the conditions
    /// before it compare against the stored value.
    static let recordSQL = """
        INSERT INTO generations (member_id, shard_id, answers_version, generated_at, match_count, floor_tenths, floor_id,
          covered_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))
        ON DUPLICATE KEY UPDATE
          shard_id = IF(VALUES(generated_at) >= generated_at, VALUES(shard_id), shard_id),
          answers_version = IF(VALUES(generated_at) >= generated_at, VALUES(answers_version), answers_version),
          match_count = IF(VALUES(generated_at) >= generated_at, VALUES(match_count), match_count),
          floor_tenths = IF(VALUES(generated_at) >= generated_at, VALUES(floor_tenths), floor_tenths),
          floor_id = IF(VALUES(generated_at) >= generated_at, VALUES(floor_id), floor_id),
          covered_at = IF(VALUES(generated_at) >= generated_at, VALUES(covered_at), covered_at),
          recorded_at = IF(VALUES(generated_at) >= generated_at, VALUES(recorded_at), recorded_at),
          generated_at = GREATEST(generated_at, VALUES(generated_at))
        """
}
