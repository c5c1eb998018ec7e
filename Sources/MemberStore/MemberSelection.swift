import MariaDBClient
import Scoring

/// Which live members a backfill or an eviction selects, with its bounds
/// already resolved to Unix seconds (`members.last_active`).
package enum MemberSelection: Sendable, Hashable {
    /// Members with `from <= last_active < before`; a missing bound is open.
    /// Members never active (`last_active` NULL) are selected only when
    /// there is no lower bound (they have been dormant forever).
    case activity(from: Int64?, before: Int64?)
    /// Exactly these members (sorted, unique); ids that are unknown or
    /// deleted select nothing.
    case ids([MemberID])

    /// Every live member.
    package static let all = MemberSelection.activity(from: nil, before: nil)

    /// Whether a member whose `last_active` is `lastActive` is selected (by
    /// activity; always true for an id list). The SQL below says the same.
    package func admits(lastActive: Int64?) -> Bool {
        switch self {
        case .ids: return true
        case .activity(let from, let before):
            guard let lastActive else { return from == nil }
            if let from, lastActive < from { return false }
            if let before, lastActive >= before { return false }
            return true
        }
    }
}

/// A selected member and what MySQL records about their set.
package struct SelectedMember: Sendable, Hashable {
    package var id: MemberID
    package var lastActive: Int64?
    /// `member_shards`: the shard they are assigned to.
    package var assignedShard: UInt32?
    /// `generations`: where their set was written, whether it was computed
    /// from their current answers, how many matches it held.
    package var generation: GenerationState?

    package struct GenerationState: Sendable, Hashable {
        package var shard: UInt32
        package var current: Bool
        package var matchCount: Int

        package init(shard: UInt32, current: Bool, matchCount: Int) {
            self.shard = shard
            self.current = current
            self.matchCount = matchCount
        }
    }

    package init(id: MemberID, lastActive: Int64?, assignedShard: UInt32?, generation: GenerationState?) {
        self.id = id
        self.lastActive = lastActive
        self.assignedShard = assignedShard
        self.generation = generation
    }

    /// MySQL says their set is current: generated from their answers on the
    /// shard they are assigned to. (Whether the shard still has it is the
    /// caller's check.)
    package var recordedCurrent: Bool {
        guard let generation, let assignedShard else { return false }
        return generation.current && generation.shard == assignedShard
    }
}

extension MemberRepository {
    /// Selected live members with an id above `after`, ascending, at most
    /// `limit`, with their shard and generation: the pages a run plans from.
    package func selectedMembers(_ selection: MemberSelection, after: MemberID = 0, limit: Int = 10_000) throws
        -> [SelectedMember]
    {
        precondition(limit > 0, "limit must be positive")
        let head = """
            SELECT m.id, m.last_active, ms.shard_id, g.shard_id, g.answers_version = m.answers_version, g.match_count
            FROM members m
            LEFT JOIN member_shards ms ON ms.member_id = m.id
            LEFT JOIN generations g ON g.member_id = m.id
            WHERE m.deleted = 0 AND m.id > ?
            """
        var parameters: [SQLValue] = [.uint(UInt64(after))]
        let condition: String
        switch selection {
        case .activity(let from?, let before?):
            condition = " AND m.last_active >= ? AND m.last_active < ?"
            parameters += [.int(from), .int(before)]
        case .activity(let from?, nil):
            condition = " AND m.last_active >= ?"
            parameters.append(.int(from))
        case .activity(nil, let before?):
            condition = " AND (m.last_active < ? OR m.last_active IS NULL)"
            parameters.append(.int(before))
        case .activity(nil, nil):
            condition = ""
        case .ids(let ids):
            // One statement shape: the ids above `after`, 1000 at a time, the
            // last repeated to fill the list (duplicates in IN are harmless).
            let chunkSize = 1000
            let start = ids.partitioningIndex { $0 > after }
            let chunk = ids[start..<min(ids.count, start + min(limit, chunkSize))]
            guard !chunk.isEmpty else { return [] }
            var values = chunk.map { SQLValue.uint(UInt64($0)) }
            while values.count < chunkSize { values.append(values[values.count - 1]) }
            condition = " AND m.id IN (" + Array(repeating: "?", count: chunkSize).joined(separator: ",") + ")"
            parameters += values
        }
        parameters.append(SQLValue(limit))
        var members: [SelectedMember] = []
        try connection.forEachRow(head + condition + " ORDER BY m.id LIMIT ?", parameters) { row in
            let generation = row.isNull(3)
                ? nil
                : SelectedMember.GenerationState(
                    shard: UInt32(truncatingIfNeeded: row.uint(3) ?? 0), current: (row.int(4) ?? 0) == 1,
                    matchCount: Int(row.int(5) ?? 0))
            members.append(
                SelectedMember(
                    id: MemberID(truncatingIfNeeded: row.uint(0) ?? 0), lastActive: row.isNull(1) ? nil : row.int(1),
                    assignedShard: row.isNull(2) ? nil : UInt32(truncatingIfNeeded: row.uint(2) ?? 0),
                    generation: generation))
        }
        return members
    }
}

extension Collection {
    /// The first index whose element satisfies `predicate`, for a collection
    /// partitioned so that every element satisfying it follows every other.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Index {
        var low = startIndex
        var count = distance(from: startIndex, to: endIndex)
        while count > 0 {
            let half = count / 2
            let middle = index(low, offsetBy: half)
            if predicate(self[middle]) {
                count = half
            } else {
                low = index(after: middle)
                count -= half + 1
            }
        }
        return low
    }
}
