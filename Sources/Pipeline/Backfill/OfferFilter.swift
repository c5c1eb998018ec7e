import Foundation
import MariaDBClient
import MemberStore
import Scoring

/// Which of a rebuilt member's matches still need the member's score
/// offered: a backfill's way to leave out offers that cannot change a set.
///
/// An offer from member X to member M can only matter when M's set was
/// computed without X's current record: when M's set was generated before
/// X last changed (`members.changed_at` moves with every change to X's
/// row, answers and blocks included). A set generated after that was
/// scanned against a snapshot that held X as X is now, so it already ranks
/// X where X belongs, and the offer would come back "unchanged" or
/// "refused". So X offers only to matches whose generation is older than
/// X's last change plus ``margin`` (the snapshot's lag behind MySQL, with
/// room to spare). Matches with no recorded generation hold no set (the
/// offer would find none) or got theirs during this run, after X's record
/// was read: both are left out too.
///
/// Generation times are read once when the run starts: a set rebuilt since
/// has a newer time, so the stale value only errs towards offering.
/// Measured: in the 100k benchmark's dormant wave, every offer the full
/// path sent came back unchanged or refused (BENCHMARKS.md).
final class OfferFilter: Sendable {
    /// Members with a generation, ascending, and when it was generated (Unix ms).
    private let ids: [MemberID]
    private let generatedAt: [Int64]
    /// How far a set generated after X's change may still have missed it.
    let margin: Duration
    private let counts = Counts()

    private final class Counts: @unchecked Sendable {
        // @unchecked Sendable: the counters are only touched under `lock`.
        let lock = NSLock()
        var considered = 0
        var kept = 0
    }

    init(ids: [MemberID], generatedAt: [Int64], margin: Duration = .seconds(3600)) {
        precondition(ids.count == generatedAt.count)
        self.ids = ids
        self.generatedAt = generatedAt
        self.margin = margin
    }

    /// Every generation's time, from MySQL.
    static func load(_ connection: MariaDBConnection) throws -> OfferFilter {
        var ids: [MemberID] = []
        var times: [Int64] = []
        try connection.forEachRow("SELECT member_id, generated_at FROM generations ORDER BY member_id") { row in
            ids.append(MemberID(truncatingIfNeeded: row.uint(0) ?? 0))
            times.append(row.int(1) ?? 0)
        }
        return OfferFilter(ids: ids, generatedAt: times)
    }

    /// The matches whose sets may not hold the member's current score,
    /// given the member's last change (Unix seconds; nil: unknown, offer to all).
    func targets(changedAt: Int64?, matches: [Match]) -> [Match] {
        guard let changedAt else { return matches }
        let marginMilliseconds = margin.components.seconds * 1000
        let threshold = changedAt * 1000 + marginMilliseconds
        let kept = matches.filter { match in
            guard let generated = generation(of: match.id) else { return false }
            return generated < threshold
        }
        counts.lock.withLock {
            counts.considered += matches.count
            counts.kept += kept.count
        }
        return kept
    }

    /// Matches looked at and kept, so far.
    var totals: (considered: Int, kept: Int) { counts.lock.withLock { (counts.considered, counts.kept) } }

    private func generation(of member: MemberID) -> Int64? {
        var low = 0
        var high = ids.count
        while low < high {
            let middle = (low + high) / 2
            if ids[middle] < member { low = middle + 1 } else { high = middle }
        }
        return low < ids.count && ids[low] == member ? generatedAt[low] : nil
    }
}

/// A member's last change (`members.changed_at`, UTC, as Unix seconds),
/// on a connection of the calling thread's own.
final class ChangeReader: @unchecked Sendable {
    // @unchecked Sendable: used only by the one generation thread that made it.
    private let context: PipelineContext
    private var connection: MariaDBConnection?

    init(context: PipelineContext) { self.context = context }
    deinit { connection?.close() }

    func changedAt(_ member: MemberID) throws -> Int64? {
        let connection = try self.connection ?? context.connectMySQL()
        self.connection = connection
        return try connection.withRetry(policy: context.settings.mysqlRetry) {
            try $0.query(
                "SELECT TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', changed_at) FROM members WHERE id = ?",
                [.uint(UInt64(member))]
            ).first?.int(0)
        }
    }
}
