import MariaDBClient
import Scoring

/// Members, their answers and their blocks in MySQL, over one connection.
///
/// Threads: a repository is a thin view of a ``StoreSession``
/// (``StoreSession/members``) and inherits its rule: one thread uses it.
/// For lost connections use it inside
/// ``StoreSession/withRetry(policy:onRetry:_:)``: every method here is safe
/// to run again.
///
/// Writes keep the change-tracking columns right: each write that changes a
/// member sets `changed_at` to the server's `UTC_TIMESTAMP(6)` (what the
/// snapshot refresher follows), and `answers_version` to the digest of the
/// scoring fields (``AnswersVersion``).
package struct MemberRepository {
    @_spi(Testing) public let connection: MariaDBConnection
    /// The survey the packed answers are laid out for (the stored one).
    package let survey: Survey

    @_spi(Testing) public init(connection: MariaDBConnection, survey: Survey) {
        self.connection = connection
        self.survey = survey
    }

    /// A repository for the survey stored in the database.
    /// - Throws: ``MemberStoreError/Code/noSurvey`` before the first import.
    @_spi(Testing) public static func open(_ connection: MariaDBConnection) throws -> MemberRepository {
        guard let survey = try SurveyStore.stored(connection) else {
            throw MemberStoreError(.noSurvey, "no survey stored yet: import a survey and members first")
        }
        return MemberRepository(connection: connection, survey: survey)
    }

    // MARK: - Writing

    /// Inserts or replaces `members` in ONE transaction: all of them are
    /// stored, or none. Each member's blocks are replaced by its `blocked`
    /// list. When an id appears more than once, the last one wins.
    ///
    /// A member whose stored row already holds exactly these values keeps
    /// its `changed_at` (so re-importing an unchanged file gives the
    /// snapshot refresher nothing to do); any difference, `last_active`
    /// included, or a tombstone coming back, sets it to now.
    ///
    /// Cost: one multi-row `INSERT ... ON DUPLICATE KEY UPDATE` per 1000
    /// members, one `DELETE` of their blocks, one multi-row insert of the
    /// new blocks, one commit. Deadlocks with concurrent writers surface as
    /// ``MariaDBClient/MariaDBError/isRetryableTransactionFailure``: run the
    /// call again (``MariaDBClient/MariaDBConnection/withRetry(policy:onRetry:sleep:_:)`` does).
    ///
    /// Call it outside any transaction: it runs its own, and MySQL's
    /// `START TRANSACTION` silently commits one already open.
    ///
    /// - Returns: the number of distinct members written.
    /// - Throws: ``MemberStoreError/Code/invalidMember`` (naming the id and
    ///   field) before anything is written if a member breaks SCORING.md's rules.
    @discardableResult
    package func upsert(_ members: some Collection<Member>) throws -> Int {
        let packed = try pack(members)
        guard !packed.isEmpty else { return 0 }
        try connection.transaction { connection in
            try Self.write(packed, on: connection)
        }
        return packed.count
    }

    /// Validates, packs, keeps the last of each id, and orders by id (a
    /// fixed lock order makes deadlocks between concurrent batches rarer).
    func pack(_ members: some Collection<Member>) throws -> [PackedMember] {
        var lastIndex: [MemberID: Int] = [:]
        lastIndex.reserveCapacity(members.count)
        var list: [Member] = []
        list.reserveCapacity(members.count)
        for member in members {
            do {
                try survey.validate(member)
            } catch {
                throw MemberStoreError(.invalidMember, "member \(member.id): \(error)")
            }
            if let index = lastIndex[member.id] {
                list[index] = member
            } else {
                lastIndex[member.id] = list.count
                list.append(member)
            }
        }
        list.sort { $0.id < $1.id }
        return list.map { PackedMember($0, questions: survey.questionCount) }
    }

    static func write(_ packed: [PackedMember], on connection: MariaDBConnection) throws {
        var start = 0
        for rows in upsertShape.statementSizes(rows: packed.count) {
            var values: [SQLValue] = []
            values.reserveCapacity(rows * upsertShape.columnsPerRow)
            for member in packed[start..<(start + rows)] {
                values.append(.uint(UInt64(member.id)))
                values.append(.int(Int64(member.gender.rawValue)))
                values.append(.int(Int64(member.seeking.rawValue)))
                values.append(.int(Int64(member.age)))
                values.append(.int(Int64(member.ageMin)))
                values.append(.int(Int64(member.ageMax)))
                values.append(member.lastActive.map(SQLValue.int) ?? .null)
                values.append(.bytes(member.answers))
                values.append(.uint(member.version))
            }
            try connection.execute(upsertSQL(rows: rows), values)
            start += rows
        }

        try deleteBlocks(of: packed.map(\.id), on: connection)
        var blockValues: [SQLValue] = []
        for member in packed {
            for blocked in member.blocked {
                blockValues.append(.uint(UInt64(member.id)))
                blockValues.append(.uint(UInt64(blocked)))
            }
        }
        if !blockValues.isEmpty {
            try connection.insert(insertBlocks, values: blockValues)
        }
    }

    /// Tombstones a member: keeps the id with `deleted = 1`, resets every
    /// personal column to a neutral value, deletes their blocks and their
    /// generation row, and bumps `changed_at` so refreshers drop them. The
    /// member's shard assignment stays until the score store has removed
    /// their set (``ShardDirectory/release(_:)``).
    ///
    /// - Returns: false when no live member had that id (nothing changed).
    @discardableResult
    package func delete(_ id: MemberID) throws -> Bool {
        try connection.transaction { connection in
            let changed = try connection.execute(
                """
                UPDATE members SET deleted = 1, gender = 0, seeking = 0, age = 0, age_min = 0, age_max = 0,
                  last_active = NULL, answers = '', answers_version = 0, changed_at = UTC_TIMESTAMP(6)
                WHERE id = ? AND deleted = 0
                """, [.uint(UInt64(id))])
            try connection.execute("DELETE FROM blocks WHERE member_id = ?", [.uint(UInt64(id))])
            try connection.execute("DELETE FROM generations WHERE member_id = ?", [.uint(UInt64(id))])
            return changed.affectedRows > 0
        }
    }

    /// Records a member's activity (a login): sets `last_active` and bumps
    /// `changed_at`; the answers version stays, so no set goes stale.
    /// - Returns: false when no live member had that id.
    @discardableResult
    package func recordActivity(_ id: MemberID, at lastActive: Int64) throws -> Bool {
        try connection.execute(
            "UPDATE members SET last_active = ?, changed_at = UTC_TIMESTAMP(6) WHERE id = ? AND deleted = 0",
            [.int(lastActive), .uint(UInt64(id))]
        ).affectedRows > 0
    }

    // MARK: - Reading

    /// The live member with this id, as stored (answers in question order,
    /// blocks sorted); `nil` when absent or deleted.
    /// - Throws: ``MemberStoreError/Code/corruptRow`` when the stored row
    ///   does not decode into a valid member.
    package func member(_ id: MemberID) throws -> Member? {
        var member: Member?
        var failure: MemberValidationError?
        var blocked: [MemberID] = []
        var first = true
        // One statement, so the member and their blocks come from one consistent read.
        try connection.forEachRow(
            "SELECT \(MemberRowDecoder.columns), b.blocked_id FROM members m LEFT JOIN blocks b ON b.member_id = m.id "
                + "WHERE m.id = ? AND m.deleted = 0 ORDER BY b.blocked_id",
            [.uint(UInt64(id))]
        ) { row in
            if let blockedID = row.uint(8) { blocked.append(MemberID(truncatingIfNeeded: blockedID)) }
            if first {
                first = false
                do throws(MemberValidationError) {
                    member = try MemberRowDecoder.decode(row, survey: survey, blocked: [])
                } catch {
                    failure = error
                }
            }
        }
        if let failure {
            throw MemberStoreError(.corruptRow, "member \(id): stored row is invalid: \(failure)")
        }
        member?.blocked = blocked
        if let member {
            do {
                try survey.validate(member)
            } catch {
                throw MemberStoreError(.corruptRow, "member \(id): stored row is invalid: \(error)")
            }
        }
        return member
    }

    /// The stored answers version of a live member; `nil` when absent or deleted.
    package func answersVersion(of id: MemberID) throws -> UInt64? {
        try connection.query("SELECT answers_version FROM members WHERE id = ? AND deleted = 0", [.uint(UInt64(id))])
            .first?.uint(0)
    }

    /// Whether the id is a tombstone (a member that was deleted).
    package func isDeleted(_ id: MemberID) throws -> Bool {
        try connection.query("SELECT deleted FROM members WHERE id = ?", [.uint(UInt64(id))]).first?.int(0) == 1
    }

    // MARK: - Statement shapes

    static let upsertShape = BatchInsert(
        "INSERT INTO members (id, gender, seeking, age, age_min, age_max, last_active, answers, answers_version, "
            + "deleted, changed_at) VALUES",
        columnsPerRow: 9,
        suffix: """
             ON DUPLICATE KEY UPDATE
              changed_at = IF(deleted = 0 AND gender = VALUES(gender) AND seeking = VALUES(seeking)
                AND age = VALUES(age) AND age_min = VALUES(age_min) AND age_max = VALUES(age_max)
                AND last_active <=> VALUES(last_active) AND answers_version = VALUES(answers_version)
                AND answers = VALUES(answers), changed_at, VALUES(changed_at)),
              gender = VALUES(gender), seeking = VALUES(seeking), age = VALUES(age), age_min = VALUES(age_min),
              age_max = VALUES(age_max), last_active = VALUES(last_active), answers = VALUES(answers),
              answers_version = VALUES(answers_version), deleted = 0
            """)

    /// `changed_at` must be assigned first: MySQL evaluates the assignments
    /// of `ON DUPLICATE KEY UPDATE` left to right, each seeing the ones before.
    static func upsertSQL(rows: Int) -> String {
        let row = "(?,?,?,?,?,?,?,?,?,0,UTC_TIMESTAMP(6))"
        return upsertShape.prefix + " " + Array(repeating: row, count: rows).joined(separator: ",")
            + upsertShape.suffix
    }

    static let insertBlocks = BatchInsert("INSERT INTO blocks (member_id, blocked_id) VALUES", columnsPerRow: 2)

    /// Deletes the blocks of `ids` with `IN (...)` lists of a few fixed
    /// lengths (1000, then powers of two, padded by repeating the last id),
    /// so the statement cache stays small.
    static func deleteBlocks(of ids: [MemberID], on connection: MariaDBConnection) throws {
        try forEachPaddedChunk(of: ids) { chunk in
            try connection.execute(inListSQL("DELETE FROM blocks WHERE member_id IN", count: chunk.count), chunk)
        }
    }
}

/// Splits `ids` into chunks of at most 1000 whose lengths are 1000 or a
/// power of two, padding the last with copies of its last id (harmless in
/// an `IN` list).
func forEachPaddedChunk(of ids: [MemberID], _ body: ([SQLValue]) throws -> Void) rethrows {
    var start = 0
    while start < ids.count {
        let remaining = ids.count - start
        let take = min(remaining, 1000)
        let size = take == 1000 ? 1000 : 1 << (Int.bitWidth - (take - 1).leadingZeroBitCount)
        var chunk = ids[start..<(start + take)].map { SQLValue.uint(UInt64($0)) }
        while chunk.count < size { chunk.append(chunk[chunk.count - 1]) }
        try body(chunk)
        start += take
    }
}

/// `prefix (?,?,...)` with `count` placeholders.
func inListSQL(_ prefix: String, count: Int, suffix: String = "") -> String {
    prefix + " (" + Array(repeating: "?", count: count).joined(separator: ",") + ")" + suffix
}
