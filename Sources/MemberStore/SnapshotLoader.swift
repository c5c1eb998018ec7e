import KindredSupport
import MariaDBClient
import Scoring

/// A point in the server's change history: the server's `UTC_TIMESTAMP(6)`
/// taken just before a snapshot's consistent read began. Everything
/// committed before it is in the snapshot; ``SnapshotLoader/refresh(_:since:onInvalid:)``
/// picks up what changed after it (minus the overlap).
package struct SnapshotWatermark: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// `YYYY-MM-DD HH:MM:SS.ffffff`, UTC, as MySQL prints a DATETIME(6).
    package let serverTime: String

    package init(serverTime: String) { self.serverTime = serverTime }

    /// The fixed-width format orders like the times it names.
    package static func < (a: Self, b: Self) -> Bool { a.serverTime < b.serverTime }

    package var description: String { serverTime + " UTC" }
}

/// A stored member that could not be loaded: hand-edited into something
/// invalid, or written by a bug. The reason names the field and the rule,
/// never the member's values.
package struct InvalidMemberRow: Sendable, Hashable, CustomStringConvertible {
    package let id: MemberID
    package let reason: String

    package var description: String { "member \(id): \(reason)" }
}

/// Members changed since a watermark, read but not yet applied.
package struct SnapshotChanges: Sendable {
    /// The watermark for the next refresh.
    package var watermark: SnapshotWatermark
    /// Live members, valid, as stored now.
    package var members: [Member] = []
    /// Their answers versions (`members[i]`'s is `versions[i]`), the
    /// population's tags.
    package var versions: [UInt64] = []
    /// Members whose record the caller already holds (same answers
    /// version): only their last activity, not decoded again.
    package var activity: [(id: MemberID, lastActive: Int64?)] = []
    /// Tombstones.
    package var deleted: [MemberID] = []
    /// Rows that do not decode into a valid member.
    package var invalid: [InvalidMemberRow] = []

    package init(watermark: SnapshotWatermark) { self.watermark = watermark }

    package var isEmpty: Bool { members.isEmpty && deleted.isEmpty && invalid.isEmpty && activity.isEmpty }
}

/// What a refresh applied.
package struct RefreshResult: Sendable, Hashable {
    /// Pass this to the next refresh.
    package var watermark: SnapshotWatermark
    /// Members inserted or replaced (re-applied ones included).
    package var upserted = 0
    /// Members removed: deleted in MySQL, or now invalid there.
    package var removed = 0
    /// Rows reported through `onInvalid`.
    package var invalid = 0
    /// Whether ``Scoring/Population/organizeIfNeeded()`` re-sorted the population.
    package var reorganized = false
}

/// Loads the live members from MySQL into a ``Scoring/Population`` and
/// keeps it fresh.
///
/// **Change tracking.** Every write to a member sets `changed_at` to the
/// server's UTC time, and the `members_changed_at` index finds what changed.
/// A refresh asks for rows with `changed_at > watermark - overlap`: a
/// transaction stamps `changed_at` when its statement runs but becomes
/// visible only when it commits, so a writer that commits after a refresh
/// read can carry a time before that refresh's watermark. The overlap (10 s
/// by default) catches such late commits as long as write transactions are
/// shorter than it; the price is re-applying the last few seconds of
/// changes on every refresh, which is harmless (an upsert of the same
/// member is a no-op for scoring).
///
/// **Consistency.** Each load or refresh reads members and blocks inside one
/// `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`, so a member and
/// their blocks always come from the same moment, and no locks are taken.
///
/// **Bad rows.** A row that fails to decode or validate is reported to
/// `onInvalid` and skipped (on refresh, a stale copy of that member is
/// removed: MySQL is the truth, and an unreadable member is treated as
/// absent). Nothing crashes.
///
/// Threads: uses its connection from the calling thread; the population
/// must not be scanned while a load or refresh writes it (hold a
/// ``KindredSupport/ReadWriteLock``'s write lock around `refresh`).
///
/// Cost: the load streams rows (`forEachRow`, memory flat apart from the
/// population), decodes the packed answers and upserts, then runs one
/// ``Scoring/Population/organize()``. Measured (`kindred-bench store load`,
/// release, loopback): 1,000,000 members (Q = 100) in 2.4-3.9 s, of which
/// streaming the rows alone takes 0.6 s; peak RSS ~720 MB.
package struct SnapshotLoader {
    @_spi(Testing) public let connection: MariaDBConnection
    /// How far behind the watermark a refresh looks again (late commits).
    package var overlap: Duration

    @_spi(Testing) public init(connection: MariaDBConnection, overlap: Duration = .seconds(10)) {
        self.connection = connection
        self.overlap = overlap
    }

    /// Loads every live member into a new population for the stored survey.
    /// - Throws: ``MemberStoreError/Code/noSurvey`` when nothing was imported.
    package func load(
        onInvalid: (InvalidMemberRow) -> Void = { _ in }
    ) throws -> (population: Population, watermark: SnapshotWatermark) {
        guard let survey = try SurveyStore.stored(connection) else {
            throw MemberStoreError(.noSurvey, "no survey stored yet: import a survey and members first")
        }
        let estimate = try connection.query(
            "SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'members'"
        ).first?.int(0) ?? 0
        let population = Population(survey: survey, capacity: Int(max(1024, estimate + estimate / 8)))
        let watermark = try load(into: population, onInvalid: onInvalid)
        return (population, watermark)
    }

    /// Loads every live member into `population` (upserting over what it
    /// holds), then organizes it. Returns the watermark for the first refresh.
    @discardableResult
    package func load(into population: Population, onInvalid: (InvalidMemberRow) -> Void = { _ in }) throws
        -> SnapshotWatermark
    {
        let watermark = try serverTime()
        try inSnapshot {
            var blocks: [MemberID: [MemberID]] = [:]
            try connection.forEachRow("SELECT member_id, blocked_id FROM blocks ORDER BY member_id, blocked_id") { row in
                blocks[MemberID(truncatingIfNeeded: row.uint(0) ?? 0), default: []]
                    .append(MemberID(truncatingIfNeeded: row.uint(1) ?? 0))
            }
            let survey = population.survey
            try connection.forEachRow(
                "SELECT \(MemberRowDecoder.columns), m.answers_version FROM members m WHERE m.deleted = 0"
            ) { row in
                let id = MemberID(truncatingIfNeeded: row.uint(0) ?? 0)
                do throws(MemberValidationError) {
                    let member = try MemberRowDecoder.decode(row, survey: survey, blocked: blocks[id] ?? [])
                    try population.upsert(member, tag: row.uint(8) ?? 0)
                } catch {
                    onInvalid(InvalidMemberRow(id: id, reason: error.description))
                }
            }
        }
        population.organize()
        return watermark
    }

    /// Applies to `population` every member changed since `watermark` (minus
    /// the overlap): upserts live ones, removes deleted ones, then lets the
    /// population re-sort itself if its unsorted tail has grown.
    /// (``changes(since:survey:)`` then ``apply(_:to:onRemove:)``, for a
    /// caller that holds no lock.)
    package func refresh(
        _ population: Population, since watermark: SnapshotWatermark,
        onInvalid: (InvalidMemberRow) -> Void = { _ in }
    ) throws -> RefreshResult {
        let changes = try changes(since: watermark, survey: population.survey)
        for row in changes.invalid { onInvalid(row) }
        return Self.apply(changes, to: population)
    }

    /// Reads every member changed since `watermark` (minus the overlap),
    /// without touching any population: the slow half of a refresh, which a
    /// shared snapshot runs outside its write lock.
    ///
    /// `known(id, version)` says whether the caller's snapshot holds that
    /// member at that answers version already: such a row (the overlap
    /// re-reads the last seconds every time) is not decoded, only its last
    /// activity is reported.
    package func changes(
        since watermark: SnapshotWatermark, survey: Survey, known: (MemberID, UInt64) -> Bool = { _, _ in false }
    ) throws -> SnapshotChanges {
        var result = SnapshotChanges(watermark: try serverTime())
        let overlapMicroseconds = overlap.inMicroseconds
        let since: [SQLValue] = [.text(watermark.serverTime), .int(overlapMicroseconds)]
        let changed = "m.changed_at > CAST(? AS DATETIME(6)) - INTERVAL ? MICROSECOND"
        try inSnapshot {
            var blocks: [MemberID: [MemberID]] = [:]
            try connection.forEachRow(
                "SELECT b.member_id, b.blocked_id FROM members m JOIN blocks b ON b.member_id = m.id "
                    + "WHERE \(changed) AND m.deleted = 0 ORDER BY b.member_id, b.blocked_id",
                since
            ) { row in
                blocks[MemberID(truncatingIfNeeded: row.uint(0) ?? 0), default: []]
                    .append(MemberID(truncatingIfNeeded: row.uint(1) ?? 0))
            }
            try connection.forEachRow(
                "SELECT \(MemberRowDecoder.columns), m.deleted, m.answers_version FROM members m WHERE \(changed)", since
            ) { row in
                let id = MemberID(truncatingIfNeeded: row.uint(0) ?? 0)
                if row.int(8) != 0 {
                    result.deleted.append(id)
                    return
                }
                if known(id, row.uint(9) ?? 0) {
                    result.activity.append((id, row.int(6)))
                    return
                }
                do throws(MemberValidationError) {
                    var member = try MemberRowDecoder.decode(row, survey: survey, blocked: blocks[id] ?? [])
                    member.blocked = blocks[id] ?? []
                    try survey.validate(member)
                    result.members.append(member)
                    result.versions.append(row.uint(9) ?? 0)
                } catch {
                    result.invalid.append(InvalidMemberRow(id: id, reason: error.description))
                }
            }
        }
        return result
    }

    /// Applies changes read by ``changes(since:survey:)``: live members are
    /// upserted, deleted and invalid ones removed (MySQL is the truth: a
    /// corrupt row must not keep its stale copy scoring). `onRemove` gets
    /// each removed member's last record, before removal.
    package static func apply(
        _ changes: SnapshotChanges, to population: Population, onRemove: (Member) -> Void = { _ in }
    ) -> RefreshResult {
        var result = RefreshResult(watermark: changes.watermark)
        for (member, version) in zip(changes.members, changes.versions) {
            do {
                try population.upsert(member, tag: version)
                result.upserted += 1
            } catch {
                result.invalid += 1
            }
        }
        for id in changes.deleted + changes.invalid.map(\.id) {
            if let old = population.member(id) { onRemove(old) }
            if population.remove(id) { result.removed += 1 }
        }
        result.invalid += changes.invalid.count
        result.reorganized = population.organizeIfNeeded()
        return result
    }

    /// The server's clock, in the format of `changed_at`.
    private func serverTime() throws -> SnapshotWatermark {
        SnapshotWatermark(serverTime: try connection.serverTime().description)
    }

    /// Runs `body` in a read-only consistent-snapshot transaction.
    private func inSnapshot(_ body: () throws -> Void) throws {
        try connection.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        do {
            try body()
        } catch {
            try? connection.rollback()
            throw error
        }
        try connection.commit()
    }
}
