import MariaDBClient
import Scoring

/// Which members to select by last activity (`last_active`, Unix seconds).
package enum ActivityFilter: Sendable, Hashable {
    /// Active at or after `now - seconds`.
    case activeWithin(seconds: Int64, now: Int64)
    /// Not active since `now - seconds` (last active strictly before it);
    /// members never active count as dormant when `includingNeverActive`.
    case dormantFor(seconds: Int64, now: Int64, includingNeverActive: Bool = true)
    /// Active at or after `timestamp`.
    case activeSince(Int64)
    /// Every live member.
    case all
}

/// Live and deleted member counts.
package struct MemberCounts: Sendable, Hashable {
    package var live: Int
    package var deleted: Int

    package init(live: Int, deleted: Int) {
        self.live = live
        self.deleted = deleted
    }
}

extension MemberRepository {
    /// Live member ids matching `filter`, ascending, after `after`, at most
    /// `limit`: page through millions with `after:` set to the last id of
    /// the previous page (resumable, and each page a short query).
    package func memberIDs(_ filter: ActivityFilter, after: MemberID = 0, limit: Int = 10_000) throws -> [MemberID] {
        precondition(limit > 0, "limit must be positive")
        let sql: String
        var parameters: [SQLValue] = [.uint(UInt64(after))]
        switch filter {
        case .activeWithin(let seconds, let now):
            sql = "SELECT id FROM members WHERE id > ? AND deleted = 0 AND last_active >= ? ORDER BY id LIMIT ?"
            parameters.append(.int(now - seconds))
        case .dormantFor(let seconds, let now, let includingNeverActive):
            sql = includingNeverActive
                ? "SELECT id FROM members WHERE id > ? AND deleted = 0 AND (last_active < ? OR last_active IS NULL) ORDER BY id LIMIT ?"
                : "SELECT id FROM members WHERE id > ? AND deleted = 0 AND last_active < ? ORDER BY id LIMIT ?"
            parameters.append(.int(now - seconds))
        case .activeSince(let timestamp):
            sql = "SELECT id FROM members WHERE id > ? AND deleted = 0 AND last_active >= ? ORDER BY id LIMIT ?"
            parameters.append(.int(timestamp))
        case .all:
            sql = "SELECT id FROM members WHERE id > ? AND deleted = 0 ORDER BY id LIMIT ?"
        }
        parameters.append(SQLValue(limit))
        var ids: [MemberID] = []
        try connection.forEachRow(sql, parameters) { row in
            ids.append(MemberID(truncatingIfNeeded: row.uint(0) ?? 0))
        }
        return ids
    }

    /// The largest member id ever stored (deleted members included), 0
    /// when there is none: what sizes the id fields of a score set.
    package func largestID() throws -> MemberID {
        MemberID(truncatingIfNeeded: try connection.query("SELECT COALESCE(MAX(id), 0) FROM members").first?.uint(0) ?? 0)
    }

    /// Live and deleted (tombstoned) members.
    package func counts() throws -> MemberCounts {
        let row = try connection.query(
            "SELECT COALESCE(SUM(deleted = 0), 0), COALESCE(SUM(deleted <> 0), 0) FROM members"
        ).first
        return MemberCounts(live: Int(row?.int(0) ?? 0), deleted: Int(row?.int(1) ?? 0))
    }
}
