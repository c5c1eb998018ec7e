import KindredCore
import KindredSupport
import RedisClient
import Scoring
import Synchronization
import WorkQueue

/// Which stored entries a reader serves: the first N of the stored ranking
/// (a set keeps a slack beyond N) after hiding every entry that is marked
/// (a deletion, a block with the reader), or that fails the mutual hard
/// filters against this process's snapshot (genders, ages, blocks; a
/// member the snapshot does not hold is hidden too). So between a change
/// and the sets' correction a served entry never fails the filters against
/// the reader's snapshot, which follows MySQL within its refresh interval.
enum Visibility {
    /// The visible ranking of `member`'s stored entries (ranked keys), cut
    /// to `limit`, and the snapshot version it was computed at.
    static func visible(
        _ member: MemberID, ranked: [UInt64], limit: Int, marks: DeletionFilter.Marks, population: SharedPopulation
    ) -> (keys: [UInt64], snapshot: Int) {
        population.read(withVersion: { population, version in
            let check = population.hardFilterCheck(for: member)
            let partners = marks.blocked[member]
            var visible: [UInt64] = []
            visible.reserveCapacity(min(limit, ranked.count))
            for key in ranked {
                let id = RankedSetCache.id(key)
                if marks.deleted.contains(id) || partners?.contains(id) == true { continue }
                if let check, !check.passes(id) { continue }
                visible.append(key)
                if visible.count == limit { break }
            }
            return (visible, version)
        })
    }
}
