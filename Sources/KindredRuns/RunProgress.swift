import KindredCore
import MemberStore
import Scoring

/// What happened to one selected member in a run.
package enum MemberResult: Sendable, Hashable {
    /// Rebuilt (backfill) or evicted (evict).
    case done
    /// Nothing to do: the set was current already (backfill), or the member
    /// holds no set or is active again (evict).
    case skipped
    /// The member was deleted meanwhile (backfill removed what was left).
    case gone
    /// Could not be processed; the reason carries no member data.
    case failed(String)
}

/// The members of a run in ascending id order and which of them are
/// finished: the pure core of checkpointing.
///
/// Members are handed out in order (``next()``) and finish in any order
/// (``finish(_:_:)``, from several threads through a lock held by the
/// caller); a member handed out and then given back (``giveBack(_:)``:
/// stopped before it started) is handed out again first. The *frontier* is
/// the length of the longest finished prefix: every member before it is
/// done, so the id just before it is a safe checkpoint, and the committed
/// counters count exactly that prefix. Members that need no work (their set
/// is current) finish the moment the frontier reaches them.
package struct RunProgress: Sendable {
    package struct Counts: Sendable, Hashable {
        package var done = 0
        package var skipped = 0
        package var gone = 0
        package var failed = 0

        package init(done: Int = 0, skipped: Int = 0, gone: Int = 0, failed: Int = 0) {
            self.done = done
            self.skipped = skipped
            self.gone = gone
            self.failed = failed
        }

        package var total: Int { done + skipped + gone + failed }

        mutating func add(_ result: MemberResult) {
            switch result {
            case .done: done += 1
            case .skipped: skipped += 1
            case .gone: gone += 1
            case .failed: failed += 1
            }
        }
    }

    /// The run's members (ascending) and whether each needs work.
    private let ids: [MemberID]
    private let needsWork: [Bool]
    private var results: [MemberResult?]
    /// Positions handed out and not finished.
    private var inFlight = Set<Int>()
    /// Positions given back, to hand out again (lowest first).
    private var returned: [Int] = []
    /// The next position never handed out.
    private var cursor = 0
    /// Every position before it is finished.
    package private(set) var frontier = 0
    /// Counts over the finished prefix (what a checkpoint records), on top
    /// of what earlier sessions of the run committed.
    package private(set) var committed: Counts
    /// Counts over every finished member (what a progress line shows).
    package private(set) var finished: Counts
    /// Failures within the finished prefix not yet taken by ``takeCommittedFailures()``.
    private var pendingFailures: [BackfillFailure] = []
    /// The checkpoint before this session.
    package let startCheckpoint: MemberID

    package init(members: [(id: MemberID, needsWork: Bool)], checkpoint: MemberID = 0, committed: Counts = Counts()) {
        precondition(zip(members, members.dropFirst()).allSatisfy { $0.id < $1.id }, "members must be ascending")
        precondition(members.first.map { $0.id > checkpoint } ?? true, "members must lie above the checkpoint")
        ids = members.map(\.id)
        needsWork = members.map(\.needsWork)
        results = Array(repeating: nil, count: members.count)
        startCheckpoint = checkpoint
        self.committed = committed
        finished = committed
        advance()
    }

    /// Members in the run (this session's plan).
    package var count: Int { ids.count }
    /// Members that need work in this session's plan.
    package var workCount: Int { needsWork.lazy.filter { $0 }.count }

    /// The highest id below which every member is finished.
    package var checkpoint: MemberID { frontier == 0 ? startCheckpoint : ids[frontier - 1] }

    /// Every member is finished.
    package var isComplete: Bool { frontier == ids.count }

    /// The next member that needs work, or nil when none is left to hand out.
    package mutating func next() -> MemberID? {
        if !returned.isEmpty {
            let position = returned.removeFirst()
            inFlight.insert(position)
            return ids[position]
        }
        while cursor < ids.count {
            let position = cursor
            cursor += 1
            if needsWork[position] {
                inFlight.insert(position)
                return ids[position]
            }
        }
        return nil
    }

    /// Records how a handed-out member ended.
    package mutating func finish(_ id: MemberID, _ result: MemberResult) {
        guard let position = position(of: id), inFlight.remove(position) != nil else {
            preconditionFailure("member \(id) was not handed out")
        }
        results[position] = result
        finished.add(result)
        advance()
    }

    /// Gives back a handed-out member that was never started.
    package mutating func giveBack(_ id: MemberID) {
        guard let position = position(of: id), inFlight.remove(position) != nil else {
            preconditionFailure("member \(id) was not handed out")
        }
        returned.append(position)
        returned.sort()
    }

    /// The failures of the finished prefix since the last call (for the checkpoint).
    package mutating func takeCommittedFailures() -> [BackfillFailure] {
        defer { pendingFailures.removeAll() }
        return pendingFailures
    }

    /// Puts back failures taken for a checkpoint that could not be saved.
    package mutating func restoreCommittedFailures(_ failures: [BackfillFailure]) {
        pendingFailures = failures + pendingFailures
    }

    private func position(of id: MemberID) -> Int? {
        var low = 0
        var high = ids.count
        while low < high {
            let middle = (low + high) / 2
            if ids[middle] < id { low = middle + 1 } else { high = middle }
        }
        return low < ids.count && ids[low] == id ? low : nil
    }

    /// Moves the frontier over finished members and members needing no work
    /// (which count as skipped when it passes them).
    private mutating func advance() {
        while frontier < ids.count {
            if let result = results[frontier] {
                committed.add(result)
                if case .failed(let reason) = result {
                    pendingFailures.append(BackfillFailure(member: ids[frontier], reason: reason))
                }
            } else if !needsWork[frontier] {
                results[frontier] = .skipped
                committed.add(.skipped)
                finished.add(.skipped)
            } else {
                break
            }
            frontier += 1
        }
    }
}
