import KindredSupport
import MariaDBClient
import Scoring

/// One record of a member that other members' sets may reflect
/// (``PublishedStore``).
package struct PublishedRecord: Sendable, Hashable {
    /// The record's answers version; 0 for the tombstone of a deleted member.
    package var version: UInt64
    /// The record (nil for a tombstone). `lastActive` is not kept.
    package var member: Member?
    /// When a publication of this record finished: every set's entry for
    /// the member agreed with it then. nil: an intent, a publication that
    /// started and may have placed only some entries.
    package var settledAt: ServerTime?

    package init(version: UInt64, member: Member?, settledAt: ServerTime?) {
        self.version = version
        self.member = member
        self.settledAt = settledAt
    }
}

/// A member as stored now, with what other members' sets may hold of them.
package struct PublicationState: Sendable {
    package var id: MemberID
    /// The live record; nil when the member is deleted or unknown.
    package var current: Member?
    /// The live record's answers version (0 when none).
    package var currentVersion: UInt64
    /// When the member's row last changed (server clock); nil when unknown.
    package var changedAt: ServerTime?
    /// Every published record (settled ones, intents, a tombstone).
    package var records: [PublishedRecord]

    package init(id: MemberID, current: Member?, currentVersion: UInt64, changedAt: ServerTime?, records: [PublishedRecord]) {
        self.id = id
        self.current = current
        self.currentVersion = currentVersion
        self.changedAt = changedAt
        self.records = records
    }

    /// Whether other members' sets may disagree with the member as stored:
    /// a live member whose only record is not their current one, settled;
    /// a deleted one with any record but a tombstone.
    package var needsPublication: Bool {
        if current != nil {
            return !(records.count == 1 && records[0].version == currentVersion && records[0].settledAt != nil)
        }
        return records.contains { $0.version != 0 }
    }

    /// The records whose entries may stand in sets (tombstones excluded).
    package var standing: [PublishedRecord] { records.filter { $0.version != 0 && $0.member != nil } }

    /// Sets whose scan covered this time agree with the member already: the
    /// later of the row's last change and the last settled publication.
    /// With an intent (a publication interrupted at an unknown point) no
    /// time is safe and this is nil.
    package var agreedBy: ServerTime? {
        if records.contains(where: { $0.settledAt == nil }) { return nil }
        return ([changedAt].compactMap { $0 } + records.compactMap(\.settledAt)).max()
    }
}

/// The publication bookkeeping (`published`, migration 5): which records of
/// each member other members' sets may reflect, so that a change can find
/// every set that holds the member (the candidates of those records) and
/// correct each of them, exactly (SCORING.md, "Matches while the
/// population changes").
///
/// Protocol (``Pipeline`` runs it): take the member's publication lock;
/// read the state; record the current record as an intent *before* placing
/// any entry; place; settle (drop every other record, stamp the current
/// one). A publication interrupted anywhere leaves an intent, and the next
/// one treats every standing record as possibly placed.
///
/// Threads: as ``MemberRepository``, one thread per connection. The lock is
/// the connection's (`GET_LOCK`): it dies with the session.
package struct PublishedStore {
    @_spi(Testing) public let connection: MariaDBConnection
    package let survey: Survey

    @_spi(Testing) public init(connection: MariaDBConnection, survey: Survey) {
        self.connection = connection
        self.survey = survey
    }

    /// Takes the member's publication lock, waiting up to `wait`; false
    /// when another session holds it (another publication of this member
    /// is running: the caller tries again later).
    package func lock(_ id: MemberID, wait: Duration = .zero) throws -> Bool {
        let seconds = wait.inSeconds
        return try connection.query("SELECT GET_LOCK(\(Self.lockName), ?)", [.uint(UInt64(id)), .double(seconds)]).first?.int(0) == 1
    }

    /// Whether this session still holds the member's lock (a reconnect
    /// after MySQL restarted loses it).
    package func holdsLock(_ id: MemberID) throws -> Bool {
        try connection.query("SELECT IS_USED_LOCK(\(Self.lockName)) = CONNECTION_ID()", [.uint(UInt64(id))]).first?.int(0) == 1
    }

    package func unlock(_ id: MemberID) throws {
        _ = try connection.query("SELECT RELEASE_LOCK(\(Self.lockName))", [.uint(UInt64(id))])
    }

    /// The lock's name for the member bound to the one parameter: user locks
    /// are server-wide, so the database's name is in it (two installations
    /// on one server never share a lock).
    static let lockName = "CONCAT('kindred.publish:', MD5(DATABASE()), ':', ?)"

    /// The member's current record and published records.
    /// - Throws: ``MemberStoreError/Code/corruptRow`` for a stored row (or a
    ///   published one) that breaks the rules.
    package func state(of id: MemberID) throws -> PublicationState {
        let current = try MemberRepository(connection: connection, survey: survey).member(id)
        let row = try connection.query(
            "SELECT answers_version, CAST(changed_at AS CHAR) FROM members WHERE id = ?", [.uint(UInt64(id))]
        ).first
        return PublicationState(
            id: id, current: current, currentVersion: current == nil ? 0 : (row?.uint(0) ?? 0),
            changedAt: row?.string(1).flatMap(ServerTime.init), records: try records(of: id))
    }

    /// The member's published records, by answers version.
    /// - Throws: ``MemberStoreError/Code/corruptRow`` for a published record
    ///   that breaks the rules.
    package func records(of id: MemberID) throws -> [PublishedRecord] {
        var records: [PublishedRecord] = []
        var failure: MemberValidationError?
        try connection.forEachRow(
            "SELECT p.member_id, p.gender, p.seeking, p.age, p.age_min, p.age_max, NULL, p.answers, p.answers_version, "
                + "p.blocked, CAST(p.settled_at AS CHAR) FROM published p WHERE p.member_id = ? ORDER BY p.answers_version",
            [.uint(UInt64(id))]
        ) { row in
            let version = row.uint(8) ?? 0
            var member: Member?
            if version != 0 {
                do throws(MemberValidationError) {
                    let blocked = try Self.parseBlocked(row.string(9) ?? "")
                    member = try MemberRowDecoder.decode(row, survey: survey, blocked: blocked)
                } catch {
                    failure = error
                }
            }
            records.append(PublishedRecord(version: version, member: member, settledAt: row.string(10).flatMap(ServerTime.init)))
        }
        if let failure {
            throw MemberStoreError(.corruptRow, "member \(id): a published record is invalid: \(failure)")
        }
        return records
    }

    /// Records `member` as an intent (unless that version is recorded
    /// already): from now on its entries may stand in sets.
    package func recordIntent(_ member: Member) throws {
        let packed = PackedMember(member, questions: survey.questionCount)
        try connection.execute(
            """
            INSERT IGNORE INTO published (member_id, answers_version, gender, seeking, age, age_min, age_max, answers, blocked, settled_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
            """, Self.values(packed))
    }

    /// Every set agrees with `current` now: the other records are dropped
    /// and this one is stamped settled; for a deleted member (`current`
    /// nil) only a tombstone stays, stamped with the time.
    package func settle(_ id: MemberID, current: Member?) throws {
        try connection.transaction { connection in
            if let current {
                let packed = PackedMember(current, questions: survey.questionCount)
                try connection.execute(
                    "DELETE FROM published WHERE member_id = ? AND answers_version <> ?",
                    [.uint(UInt64(id)), .uint(packed.version)])
                try connection.execute(
                    """
                    INSERT INTO published (member_id, answers_version, gender, seeking, age, age_min, age_max, answers, blocked, settled_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE settled_at = UTC_TIMESTAMP(6)
                    """, Self.values(packed))
            } else {
                try connection.execute("DELETE FROM published WHERE member_id = ?", [.uint(UInt64(id))])
                try connection.execute(
                    "INSERT INTO published (member_id, answers_version, answers, blocked, settled_at) VALUES (?, 0, '', '', UTC_TIMESTAMP(6))",
                    [.uint(UInt64(id))])
            }
        }
    }

    /// Members whose publication is due, ascending after `after`: live
    /// members without their current record settled (or with other records
    /// standing), and deleted members with a record standing.
    package func needingPublication(after: MemberID = 0, limit: Int = 10_000) throws -> [MemberID] {
        var ids: [MemberID] = []
        try connection.forEachRow(
            """
            SELECT m.id FROM members m WHERE m.id > ? AND (
              (m.deleted = 0 AND (
                 NOT EXISTS (SELECT 1 FROM published p WHERE p.member_id = m.id AND p.answers_version = m.answers_version
                             AND p.settled_at IS NOT NULL)
                 OR EXISTS (SELECT 1 FROM published p WHERE p.member_id = m.id AND p.answers_version <> m.answers_version)))
              OR (m.deleted = 1 AND EXISTS (SELECT 1 FROM published p WHERE p.member_id = m.id AND p.answers_version <> 0)))
            ORDER BY m.id LIMIT ?
            """, [.uint(UInt64(after)), SQLValue(limit)]
        ) { ids.append(MemberID(truncatingIfNeeded: $0.uint(0) ?? 0)) }
        return ids
    }

    /// Which of `ids` have a publication due (as ``needingPublication(after:limit:)``).
    package func pendingPublication(among ids: [MemberID]) throws -> Set<MemberID> {
        var pending = Set<MemberID>()
        try forEachPaddedChunk(of: ids) { chunk in
            try connection.forEachRow(
                inListSQL("SELECT m.id FROM members m WHERE m.id IN", count: chunk.count, suffix: """
                     AND (
                      (m.deleted = 0 AND (
                         NOT EXISTS (SELECT 1 FROM published p WHERE p.member_id = m.id AND p.answers_version = m.answers_version
                                     AND p.settled_at IS NOT NULL)
                         OR EXISTS (SELECT 1 FROM published p WHERE p.member_id = m.id AND p.answers_version <> m.answers_version)))
                      OR (m.deleted = 1 AND EXISTS (SELECT 1 FROM published p WHERE p.member_id = m.id AND p.answers_version <> 0)))
                    """), chunk
            ) { pending.insert(MemberID(truncatingIfNeeded: $0.uint(0) ?? 0)) }
        }
        return pending
    }

    /// Settles, without touching any set, the live members who have no
    /// published record at all and whose row last changed before `before`:
    /// the oldest time any stored set's scan covered (every set already
    /// ranks them as they are). Returns how many. For a population imported
    /// before its sets were built, this is everyone, in one statement per
    /// `limit` members.
    package func settleUnpublished(changedBefore before: ServerTime, limit: Int = 10_000) throws -> Int {
        try connection.execute("SET SESSION group_concat_max_len = 1073741824")
        return Int(
            try connection.execute(
                """
                INSERT IGNORE INTO published
                  (member_id, answers_version, gender, seeking, age, age_min, age_max, answers, blocked, settled_at)
                SELECT m.id, m.answers_version, m.gender, m.seeking, m.age, m.age_min, m.age_max, m.answers,
                  COALESCE((SELECT GROUP_CONCAT(b.blocked_id ORDER BY b.blocked_id) FROM blocks b WHERE b.member_id = m.id), ''),
                  UTC_TIMESTAMP(6)
                FROM members m
                WHERE m.deleted = 0 AND m.changed_at < CAST(? AS DATETIME(6))
                  AND NOT EXISTS (SELECT 1 FROM published p WHERE p.member_id = m.id)
                ORDER BY m.id LIMIT ?
                """, [.text(before.description), SQLValue(limit)]
            ).affectedRows)
    }

    /// Settles every member ``settleUnpublished(changedBefore:limit:)``
    /// may settle: those whose row changed before the oldest coverage of
    /// any stored set (before now when no set is stored: nobody can be
    /// ranked wrongly, and a set written meanwhile scans or catches up on
    /// every change before its record), `limit` per statement. With
    /// `tombstoneAge`, first drops the tombstones settled longer ago than
    /// that (by the server's clock). Returns how many were settled.
    package func settleAllUnpublished(forgettingTombstonesOlderThan tombstoneAge: Duration? = nil, limit: Int = 10_000) throws -> Int {
        var now: ServerTime?
        if let tombstoneAge {
            let time = try connection.serverTime()
            now = time
            _ = try forgetTombstones(settledBefore: time - tombstoneAge)
        }
        let before = try oldestCoverage() ?? (now ?? connection.serverTime())
        var settled = 0
        while true {
            let batch = try settleUnpublished(changedBefore: before, limit: limit)
            settled += batch
            if batch < limit { return settled }
        }
    }

    /// The oldest coverage of any stored set (sets from before migration 5
    /// count as covering nothing); nil when no set is recorded.
    package func oldestCoverage() throws -> ServerTime? {
        let row = try connection.query(
            "SELECT CAST(MIN(COALESCE(covered_at, '1970-01-01 00:00:00.000000')) AS CHAR) FROM generations").first
        return row?.string(0).flatMap(ServerTime.init)
    }

    /// Drops the tombstones of removals settled before `before`.
    @discardableResult
    package func forgetTombstones(settledBefore before: ServerTime) throws -> Int {
        Int(
            try connection.execute(
                "DELETE FROM published WHERE answers_version = 0 AND settled_at < CAST(? AS DATETIME(6))",
                [.text(before.description)]
            ).affectedRows)
    }

    static func values(_ packed: PackedMember) -> [SQLValue] {
        [
            .uint(UInt64(packed.id)), .uint(packed.version), .int(Int64(packed.gender.rawValue)),
            .int(Int64(packed.seeking.rawValue)), .int(Int64(packed.age)), .int(Int64(packed.ageMin)),
            .int(Int64(packed.ageMax)), .bytes(packed.answers),
            .text(packed.blocked.map(String.init).joined(separator: ",")),
        ]
    }

    static func parseBlocked(_ text: String) throws(MemberValidationError) -> [MemberID] {
        guard !text.isEmpty else { return [] }
        var ids: [MemberID] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let id = MemberID(part), id > 0 else {
                throw MemberValidationError(field: "blocked", reason: "a published blocked id is not a member id")
            }
            ids.append(id)
        }
        return ids
    }
}
