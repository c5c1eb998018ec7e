import MariaDBClient
import Scoring

/// What a generation job reads of one member at its start, in one visit
/// (``StoreSession/jobState(of:publications:)``).
package struct JobState: Sendable {
    /// The member as stored now (record, answers version and `changed_at`
    /// from one row), and their published records when asked for.
    package var publication: PublicationState
    /// Their shard in the directory (`member_shards`), nil when none.
    package var shard: UInt32?
    /// Their recorded generation, nil when none.
    package var generation: Generation?
    /// When they were evicted (Unix seconds), nil when never.
    package var evictedAt: Int64?

    package init(publication: PublicationState, shard: UInt32?, generation: Generation?, evictedAt: Int64?) {
        self.publication = publication
        self.shard = shard
        self.generation = generation
        self.evictedAt = evictedAt
    }
}

/// A member's publication lock as one ``StoreSession`` took it: valid as
/// long as that session's server session lasts (``StoreSession/holds(_:)``).
package struct PublicationLock: Sendable, Hashable {
    package let member: MemberID
    let epoch: Int
    /// The server's id of the connection that took it (a reconnect by any
    /// path, the session's or a view's own retry, changes it).
    let connection: UInt64
}

/// Where a member's set belongs, as MySQL records it.
package struct SetPlacement: Sendable, Hashable {
    /// Their shard in the directory (`member_shards`).
    package var assigned: UInt32?
    /// The shard their generation is recorded on.
    package var recorded: UInt32?

    package init(assigned: UInt32? = nil, recorded: UInt32? = nil) {
        self.assigned = assigned
        self.recorded = recorded
    }
}

extension StoreSession {
    /// Everything a job needs of member `id` before it scans, in one visit
    /// of one or two statements: the live record with its blocks, answers
    /// version and `changed_at` (one row, so they agree), the directory's
    /// shard, the generation record and the eviction; then, with
    /// `publications`, the published records.
    ///
    /// A member unknown to `members` (or deleted) comes back with no
    /// current record, and with whatever shard, generation and eviction
    /// rows remain (what a removal clears).
    /// - Throws: ``MemberStoreError/Code/corruptRow`` for a stored row (or
    ///   a published one) that breaks the rules.
    package func jobState(of id: MemberID, publications: Bool) throws -> JobState {
        let survey = self.survey
        var current: Member?
        var failure: MemberValidationError?
        var blocked: [MemberID] = []
        var version: UInt64 = 0
        var changedAt: ServerTime?
        var shard: UInt32?
        var generation: Generation?
        var evictedAt: Int64?
        var first = true
        try link.forEachRow(Self.jobSQL, [.uint(UInt64(id))]) { row in
            if let blockedID = row.uint(8) { blocked.append(MemberID(truncatingIfNeeded: blockedID)) }
            guard first else { return }
            first = false
            if !row.isNull(0) {
                changedAt = row.string(10).flatMap(ServerTime.init)
                if row.int(11) == 0 {
                    version = row.uint(9) ?? 0
                    do throws(MemberValidationError) {
                        current = try MemberRowDecoder.decode(row, survey: survey, blocked: [])
                    } catch {
                        failure = error
                    }
                }
            }
            if let value = row.uint(12) { shard = UInt32(truncatingIfNeeded: value) }
            if !row.isNull(13) {
                generation = Generation(
                    memberID: id, shardID: UInt32(truncatingIfNeeded: row.uint(14) ?? 0), answersVersion: row.uint(15) ?? 0,
                    generatedAt: row.int(16) ?? 0, matchCount: Int(row.int(17) ?? 0),
                    floor: GenerationStore.floor(tenths: row.int(18), id: row.uint(19)),
                    coveredAt: row.string(20).flatMap(ServerTime.init))
            }
            if !row.isNull(21) { evictedAt = row.int(22) ?? 0 }
        }
        if let failure {
            throw MemberStoreError(.corruptRow, "member \(id): stored row is invalid: \(failure)")
        }
        current?.blocked = blocked
        if let member = current {
            do {
                try survey.validate(member)
            } catch {
                throw MemberStoreError(.corruptRow, "member \(id): stored row is invalid: \(error)")
            }
        }
        let records = publications ? try self.publications.records(of: id) : []
        return JobState(
            publication: PublicationState(
                id: id, current: current, currentVersion: current == nil ? 0 : version, changedAt: changedAt, records: records),
            shard: shard, generation: generation, evictedAt: evictedAt)
    }

    /// Forgets a removed member's set in MySQL: their generation record and
    /// their directory row (two idempotent deletes, one visit). The caller
    /// clears the directory's cache (``ShardDirectory/forget(_:)``).
    package func forgetSet(of id: MemberID) throws {
        try link.execute("DELETE FROM generations WHERE member_id = ?", [.uint(UInt64(id))])
        try link.execute("DELETE FROM member_shards WHERE member_id = ?", [.uint(UInt64(id))])
    }

    /// Takes member `id`'s publication lock (``PublishedStore/lock(_:wait:)``);
    /// nil when another session holds it.
    package func lockPublication(of id: MemberID) throws -> PublicationLock? {
        try publications.lock(id) ? PublicationLock(member: id, epoch: epoch, connection: link.connectionID) : nil
    }

    /// Whether `lock` is still held: this session has not reconnected since
    /// it was taken (a reconnect drops user locks), neither through its own
    /// visits (the epoch) nor by a view retrying on its own (the server's
    /// connection id, kept by the client: no round trip). Checked
    /// inside a visit, a connection that died unnoticed fails the visit's
    /// next statement, and when the visit runs again after reconnecting
    /// this answers false.
    package func holds(_ lock: PublicationLock) -> Bool {
        lock.epoch == epoch && isOpen && link.connectionID == lock.connection
    }

    /// Where each of `members` is placed: the directory's shard and the
    /// shard their generation is recorded on, either nil when none (the set
    /// audit's test for orphan sets). One statement per 1000 members.
    package func placements(of members: [MemberID]) throws -> [MemberID: SetPlacement] {
        var found: [MemberID: SetPlacement] = [:]
        try forEachPaddedChunk(of: members) { chunk in
            let sql = inListSQL("SELECT member_id, shard_id, 0 FROM member_shards WHERE member_id IN", count: chunk.count)
                + " UNION ALL "
                + inListSQL("SELECT member_id, shard_id, 1 FROM generations WHERE member_id IN", count: chunk.count)
            try link.forEachRow(sql, chunk + chunk) { row in
                let member = MemberID(truncatingIfNeeded: row.uint(0) ?? 0)
                let shard = UInt32(truncatingIfNeeded: row.uint(1) ?? 0)
                if row.int(2) == 0 { found[member, default: SetPlacement()].assigned = shard } else { found[member, default: SetPlacement()].recorded = shard }
            }
        }
        return found
    }

    /// Columns: 0-7 the member (``MemberRowDecoder/columns``), 8 a block,
    /// 9 answers version, 10 `changed_at`, 11 deleted, 12 directory shard,
    /// 13-20 the generation, 21-22 the eviction. One row per block (at
    /// least one row: the id drives the joins).
    static let jobSQL = """
        SELECT \(MemberRowDecoder.columns), b.blocked_id, m.answers_version, CAST(m.changed_at AS CHAR), m.deleted,
          ms.shard_id,
          g.member_id, g.shard_id, g.answers_version, g.generated_at, g.match_count, g.floor_tenths, g.floor_id,
          CAST(g.covered_at AS CHAR),
          e.member_id, e.evicted_at
        FROM (SELECT CAST(? AS UNSIGNED) AS id) k
        LEFT JOIN members m ON m.id = k.id
        LEFT JOIN blocks b ON b.member_id = k.id AND m.deleted = 0
        LEFT JOIN member_shards ms ON ms.member_id = k.id
        LEFT JOIN generations g ON g.member_id = k.id
        LEFT JOIN evictions e ON e.member_id = k.id
        ORDER BY b.blocked_id
        """
}
