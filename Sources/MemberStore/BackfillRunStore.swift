import MariaDBClient
import Scoring

/// One `kindred backfill` or `kindred evict` run, as checkpointed in MySQL
/// (`backfill_runs`).
///
/// Invariant: every selected member with an id at or below ``checkpoint``
/// is done (rebuilt, skipped, gone or failed), and the counters describe
/// exactly those members; members above it are planned again on resume.
package struct BackfillRunRecord: Sendable, Hashable {
    package enum State: String, Sendable, Hashable {
        case open, finished, abandoned
    }

    package var id: UInt32
    /// `backfill` or `evict` (with a `:queue` suffix for `--via-queue`).
    package var command: String
    /// The normalized selection: a run started again with the same key resumes.
    package var selectionKey: String
    /// The selection for people (windows with their exact bounds).
    package var selection: String
    /// The instant windows were measured from, Unix seconds (fixed for the run's life).
    package var now: Int64
    package var state: State
    package var checkpoint: MemberID
    /// Members to process found by the first plan.
    package var planned: Int
    package var done: Int
    package var skipped: Int
    package var gone: Int
    package var failed: Int
    /// How many times the run was started (1 + resumes).
    package var sessions: Int

    package init(
        id: UInt32, command: String, selectionKey: String, selection: String, now: Int64,
        state: State = .open, checkpoint: MemberID = 0, planned: Int = 0, done: Int = 0, skipped: Int = 0, gone: Int = 0,
        failed: Int = 0, sessions: Int = 1
    ) {
        self.id = id
        self.command = command
        self.selectionKey = selectionKey
        self.selection = selection
        self.now = now
        self.state = state
        self.checkpoint = checkpoint
        self.planned = planned
        self.done = done
        self.skipped = skipped
        self.gone = gone
        self.failed = failed
        self.sessions = sessions
    }
}

/// A member a run could not process, and why (no member data in `reason`).
package struct BackfillFailure: Sendable, Hashable {
    package var member: MemberID
    package var reason: String

    package init(member: MemberID, reason: String) {
        self.member = member
        self.reason = reason
    }
}

/// The runs' checkpoints (`backfill_runs`, `backfill_failures`). Threads:
/// one thread per connection, as everywhere in the member store.
package struct BackfillRunStore {
    @_spi(Testing) public let connection: MariaDBConnection

    @_spi(Testing) public init(connection: MariaDBConnection) {
        self.connection = connection
    }

    /// Takes the server-wide user lock for `command` + `key` in this
    /// database (held until ``unlock(command:key:)`` or the connection
    /// closes), so two processes never run the same selection at once.
    /// Returns false when another session holds it.
    package func lock(command: String, key: String) throws -> Bool {
        try connection.query(
            "SELECT GET_LOCK(CONCAT('kindred.run:', MD5(CONCAT(DATABASE(), '|', ?, '|', ?))), 0)",
            [.text(command), .text(key)]
        ).first?.int(0) == 1
    }

    /// Whether this session holds the lock of `command` + `key`. A session
    /// that reconnected (MySQL restarted, the link broke) holds nothing:
    /// user locks die with the session that took them.
    package func holdsLock(command: String, key: String) throws -> Bool {
        try connection.query(
            "SELECT IS_USED_LOCK(CONCAT('kindred.run:', MD5(CONCAT(DATABASE(), '|', ?, '|', ?)))) = CONNECTION_ID()",
            [.text(command), .text(key)]
        ).first?.int(0) == 1
    }

    package func unlock(command: String, key: String) throws {
        _ = try connection.query(
            "SELECT RELEASE_LOCK(CONCAT('kindred.run:', MD5(CONCAT(DATABASE(), '|', ?, '|', ?))))",
            [.text(command), .text(key)])
    }

    /// The open run of `command` with this selection key, if any.
    package func openRun(command: String, key: String) throws -> BackfillRunRecord? {
        try runs(where: "command = ? AND open_key = ?", [.text(command), .text(key)]).first
    }

    package func run(_ id: UInt32) throws -> BackfillRunRecord? {
        try runs(where: "id = ?", [.uint(UInt64(id))]).first
    }

    /// Every run, newest first, at most `limit`.
    package func recentRuns(limit: Int = 20) throws -> [BackfillRunRecord] {
        try runs(where: "1 = 1 ORDER BY id DESC LIMIT ?", [SQLValue(limit)])
    }

    /// When each run started, last moved and finished (Unix seconds), for
    /// rates and ETAs: `ids` are runs' ids.
    package func times(of ids: [UInt32]) throws -> [UInt32: (started: Int64, updated: Int64, finished: Int64?)] {
        var times: [UInt32: (started: Int64, updated: Int64, finished: Int64?)] = [:]
        for id in ids {
            let row = try connection.query(
                """
                SELECT TIMESTAMPDIFF(SECOND, '1970-01-01', started_at), TIMESTAMPDIFF(SECOND, '1970-01-01', updated_at),
                  TIMESTAMPDIFF(SECOND, '1970-01-01', finished_at)
                FROM backfill_runs WHERE id = ?
                """, [.uint(UInt64(id))]
            ).first
            guard let row else { continue }
            times[id] = (
                row.int(0) ?? 0, row.int(1) ?? 0, row.isNull(2) ? nil : row.int(2) ?? 0
            )
        }
        return times
    }

    /// Opens a new run and returns it (with its id).
    package func open(
        command: String, key: String, selection: String, now: Int64, planned: Int
    ) throws -> BackfillRunRecord {
        let result = try connection.execute(
            """
            INSERT INTO backfill_runs (command, selection_key, open_key, selection, now_at, state, planned,
              started_at, updated_at)
            VALUES (?, ?, ?, ?, ?, 'open', ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))
            """,
            [.text(command), .text(key), .text(key), .text(String(selection.prefix(1024))), .int(now), SQLValue(planned)])
        guard let run = try run(UInt32(truncatingIfNeeded: result.lastInsertID)) else {
            throw MemberStoreError(.corruptRow, "backfill_runs: the new run \(result.lastInsertID) vanished")
        }
        return run
    }

    /// Counts one more session of a resumed run.
    package func resumed(_ id: UInt32) throws {
        try connection.execute(
            "UPDATE backfill_runs SET sessions = sessions + 1, updated_at = UTC_TIMESTAMP(6) WHERE id = ?",
            [.uint(UInt64(id))])
    }

    /// Saves a checkpoint and the failures of the members at or below it, in
    /// one transaction (so the counters and the failure list agree).
    package func checkpoint(
        _ id: UInt32, at checkpoint: MemberID, done: Int, skipped: Int, gone: Int, failed: Int,
        failures: [BackfillFailure]
    ) throws {
        try connection.transaction { connection in
            if !failures.isEmpty {
                var values: [SQLValue] = []
                for failure in failures {
                    values += [.uint(UInt64(id)), .uint(UInt64(failure.member)), .text(String(failure.reason.prefix(512)))]
                }
                try connection.insert(Self.failureShape, values: values)
            }
            try connection.execute(
                """
                UPDATE backfill_runs SET checkpoint = GREATEST(checkpoint, ?), done_count = ?, skipped_count = ?,
                  gone_count = ?, failed_count = ?, updated_at = UTC_TIMESTAMP(6)
                WHERE id = ?
                """,
                [.uint(UInt64(checkpoint)), SQLValue(done), SQLValue(skipped), SQLValue(gone), SQLValue(failed),
                 .uint(UInt64(id))])
        }
    }

    /// Closes a run: `finished` when every selected member was processed,
    /// `abandoned` by `--restart`. Its key is free for a new run afterwards.
    package func close(_ id: UInt32, as state: BackfillRunRecord.State) throws {
        precondition(state != .open, "close a run as finished or abandoned")
        try connection.execute(
            """
            UPDATE backfill_runs SET state = ?, open_key = NULL, updated_at = UTC_TIMESTAMP(6),
              finished_at = UTC_TIMESTAMP(6) WHERE id = ?
            """,
            [.text(state.rawValue), .uint(UInt64(id))])
    }

    /// The run's recorded failures, by member id, at most `limit`.
    package func failures(of id: UInt32, limit: Int = 1000) throws -> [BackfillFailure] {
        try connection.query(
            "SELECT member_id, reason FROM backfill_failures WHERE run_id = ? ORDER BY member_id LIMIT ?",
            [.uint(UInt64(id)), SQLValue(limit)]
        ).map { BackfillFailure(member: MemberID(truncatingIfNeeded: $0.uint(0) ?? 0), reason: $0.string(1) ?? "") }
    }

    /// Failures per reason over the whole run (most frequent first).
    package func failureReasons(of id: UInt32) throws -> [(reason: String, count: Int)] {
        try connection.query(
            "SELECT reason, COUNT(*) FROM backfill_failures WHERE run_id = ? GROUP BY reason ORDER BY COUNT(*) DESC, reason",
            [.uint(UInt64(id))]
        ).map { (reason: $0.string(0) ?? "", count: Int($0.int(1) ?? 0)) }
    }

    private func runs(where condition: String, _ parameters: [SQLValue]) throws -> [BackfillRunRecord] {
        try connection.query(
            """
            SELECT id, command, selection_key, selection, now_at, state, checkpoint, planned, done_count,
              skipped_count, gone_count, failed_count, sessions
            FROM backfill_runs WHERE \(condition)
            """, parameters
        ).map { row in
            BackfillRunRecord(
                id: UInt32(truncatingIfNeeded: row.uint(0) ?? 0), command: row.string(1) ?? "",
                selectionKey: row.string(2) ?? "", selection: row.string(3) ?? "", now: row.int(4) ?? 0,
                state: BackfillRunRecord.State(rawValue: row.string(5) ?? "") ?? .open,
                checkpoint: MemberID(truncatingIfNeeded: row.uint(6) ?? 0), planned: Int(row.int(7) ?? 0),
                done: Int(row.int(8) ?? 0), skipped: Int(row.int(9) ?? 0), gone: Int(row.int(10) ?? 0),
                failed: Int(row.int(11) ?? 0), sessions: Int(row.int(12) ?? 1))
        }
    }

    /// A failure recorded twice (a resumed run that failed the member again) keeps the last reason.
    static let failureShape = BatchInsert(
        "INSERT INTO backfill_failures (run_id, member_id, reason) VALUES",
        columnsPerRow: 3,
        suffix: " ON DUPLICATE KEY UPDATE reason = VALUES(reason)")
}
