import Foundation
import KindredCore
import KindredSupport
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
            try thread.queueCall { try thread.queue.requestDeletionMarksVersion(on: $0) }
            return Pending(requested: true)
        } catch {
            return Pending(requested: false)
        }
    }

    /// The marks, after reading the version requested by ``begin(_:)``.
    func finish(_ pending: Pending, _ thread: IOThread) -> Marks {
        if pending.requested {
            do {
                let version = try thread.queueCall { try thread.queue.readDeletionMarksVersion(on: $0) }
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
            let fresh = try thread.queueCall { try thread.queue.deletionMarks(on: $0) }
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

    // MARK: - Marking (the queue's marks, which every web process reads, and this process's own at once)

    /// Marks `member` deleted in the queue, then here. Throws when the
    /// queue is unreachable (nothing marked then).
    func markDeleted(_ member: MemberID, _ thread: IOThread) throws {
        try thread.queueCall {
            try thread.queue.markDeleted(member, now: Int64(Date().timeIntervalSince1970 * 1000), on: $0)
        }
        markLocally(member)
    }

    /// Takes `member`'s deletion mark back (a failed or refused deletion, a
    /// re-registration), in the queue when it is reachable and here.
    func unmarkDeleted(_ member: MemberID, _ thread: IOThread) {
        try? thread.queueCall { try thread.queue.unmarkDeleted(member, on: $0) }
        unmarkLocally(member)
    }

    /// Marks `member`'s blocks of `others` in the queue, then here. Throws
    /// when the queue is unreachable (nothing marked then).
    func markBlocked(_ member: MemberID, _ others: [MemberID], _ thread: IOThread) throws {
        try thread.queueCall {
            try thread.queue.markBlocked(member, others, now: Int64(Date().timeIntervalSince1970 * 1000), on: $0)
        }
        markBlockedLocally(member, others)
    }

    /// Takes `member`'s block marks of `others` back, in the queue when it
    /// is reachable and here.
    func unmarkBlocked(_ member: MemberID, _ others: [MemberID], _ thread: IOThread) {
        try? thread.queueCall { try thread.queue.unmarkBlocked(member, others, on: $0) }
        unmarkBlockedLocally(member, others)
    }

    private func markLocally(_ member: MemberID) {
        state.withLock { state in
            state.localDeleted.insert(member)
            state.localEpoch &+= 1
        }
    }

    private func unmarkLocally(_ member: MemberID) {
        state.withLock { state in
            state.localDeleted.remove(member)
            state.marks.members.remove(member)
            state.localEpoch &+= 1
        }
    }

    private func markBlockedLocally(_ member: MemberID, _ others: [MemberID]) {
        state.withLock { state in
            for other in others {
                state.localBlocked[member, default: []].insert(other)
                state.localBlocked[other, default: []].insert(member)
            }
            state.localEpoch &+= 1
        }
    }

    private func unmarkBlockedLocally(_ member: MemberID, _ others: [MemberID]) {
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
