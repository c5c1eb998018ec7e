import KindredSupport
import Pipeline
import RedisClient
import Scoring
import Synchronization
import WorkQueue

/// What every read must hide at once (SCORING.md, "Matches while the
/// population changes"): the queue's deletion marks and block marks (shared
/// by every web process), refetched only when their version moves, plus the
/// ones this process marked itself before the queue's version could be read
/// back. When the queue is unreachable the last known marks are used.
///
/// Marks bridge the moment between a change being acknowledged and every
/// process's snapshot holding it; from then on readers hide whatever fails
/// the hard filters against their snapshot (``Visibility``), for good.
final class DeletionFilter: Sendable {
    private struct State {
        var marks = WorkQueue.DeletionMarks()
        var localDeleted = Set<MemberID>()
        var localBlocked: [MemberID: Set<MemberID>] = [:]
        /// Bumped by every local mark, so views computed before it are not reused.
        var localEpoch = 0
    }
    private let state = Mutex(State())

    /// The marks as a reader sees them, with the version their views are cached under.
    struct Marks: Sendable {
        var deleted: Set<MemberID>
        var blocked: [MemberID: Set<MemberID>]
        /// Changes whenever the marks may have.
        var version: Int

        func isDeleted(_ member: MemberID) -> Bool { deleted.contains(member) }
        func blocks(_ a: MemberID, _ b: MemberID) -> Bool { blocked[a]?.contains(b) ?? false }
    }

    /// A version request in flight (or nil when the queue is unreachable).
    struct Pending {
        let requested: Bool
    }

    /// Sends the version request (see ``finish(_:_:)``).
    func begin(_ thread: IOThread) -> Pending {
        do {
            try thread.queueCall { try thread.context.queue.requestDeletionMarksVersion(on: $0) }
            return Pending(requested: true)
        } catch {
            return Pending(requested: false)
        }
    }

    /// The marks, after reading the version requested by ``begin(_:)``.
    func finish(_ pending: Pending, _ thread: IOThread) -> Marks {
        if pending.requested {
            do {
                let version = try thread.queueCall { try thread.context.queue.readDeletionMarksVersion(on: $0) }
                try refresh(ifNot: version, thread)
            } catch {
                // Keep serving with what is known.
            }
        }
        return state.withLock { state in
            var blocked = state.marks.blocked
            for (member, others) in state.localBlocked { blocked[member, default: []].formUnion(others) }
            return Marks(
                deleted: state.localDeleted.isEmpty ? state.marks.members : state.marks.members.union(state.localDeleted), blocked: blocked,
                version: state.marks.version &* 1_000_003 &+ state.localEpoch)
        }
    }

    private func refresh(ifNot version: Int, _ thread: IOThread) throws {
        let known = state.withLock { state in state.marks.version }
        if version != known {
            let fresh = try thread.queueCall { try thread.context.queue.deletionMarks(on: $0) }
            state.withLock { state in
                if fresh.version >= state.marks.version {
                    state.marks = fresh
                    state.localDeleted.subtract(fresh.members)
                    for (member, others) in fresh.blocked {
                        state.localBlocked[member]?.subtract(others)
                        if state.localBlocked[member]?.isEmpty == true { state.localBlocked[member] = nil }
                    }
                }
            }
        }
    }

    /// The marks now: one `GET` of the version on the thread's queue
    /// connection, the whole lists only when they changed.
    func current(_ thread: IOThread) -> Marks {
        finish(begin(thread), thread)
    }

    func markLocally(_ member: MemberID) {
        state.withLock { state in
            state.localDeleted.insert(member)
            state.localEpoch &+= 1
        }
    }

    func unmarkLocally(_ member: MemberID) {
        state.withLock { state in
            state.localDeleted.remove(member)
            state.marks.members.remove(member)
            state.localEpoch &+= 1
        }
    }

    func markBlockedLocally(_ member: MemberID, _ others: [MemberID]) {
        state.withLock { state in
            for other in others {
                state.localBlocked[member, default: []].insert(other)
                state.localBlocked[other, default: []].insert(member)
            }
            state.localEpoch &+= 1
        }
    }

    func unmarkBlockedLocally(_ member: MemberID, _ others: [MemberID]) {
        state.withLock { state in
            for other in others {
                state.localBlocked[member]?.remove(other)
                state.localBlocked[other]?.remove(member)
                state.marks.blocked[member]?.remove(other)
                state.marks.blocked[other]?.remove(member)
            }
            state.localEpoch &+= 1
        }
    }
}

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
