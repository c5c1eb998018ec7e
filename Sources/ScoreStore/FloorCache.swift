import KindredSupport
import Scoring

/// The floors of full sets this process has learned (from offer replies and
/// whole-set writes), so that an offer that cannot enter is not sent at all.
///
/// An entry expires after ``ttl``: another process may regenerate or trim a
/// set meanwhile. A stale floor is only ever too *low* or too *high* by what
/// changed since; the cost of a floor that is too high is an offer skipped
/// that would have entered (and been trimmed soon, or not: the set is
/// regenerated from scratch whenever its member changes), which is why the
/// TTL is short. Bounded: past ``capacity`` entries, expired ones are
/// dropped, then everything.
final class FloorCache: Sendable {
    struct Entry: Sendable {
        var floor: Match
        var learned: ContinuousClock.Instant
    }

    let ttl: Duration
    let capacity: Int
    private let lock = Lock()
    private nonisolated(unsafe) var entries: [MemberID: Entry] = [:]
    // nonisolated(unsafe): only touched inside `lock.withLock`.

    init(ttl: Duration, capacity: Int) {
        self.ttl = ttl
        self.capacity = capacity
    }

    /// The floor of `member`'s set if known and fresh at `now`.
    func floor(of member: MemberID, now: ContinuousClock.Instant) -> Match? {
        lock.withLock {
            guard let entry = entries[member] else { return nil }
            guard now - entry.learned < ttl else {
                entries[member] = nil
                return nil
            }
            return entry.floor
        }
    }

    func set(_ floor: Match, of member: MemberID, now: ContinuousClock.Instant) {
        lock.withLock {
            if entries.count >= capacity && entries[member] == nil {
                entries = entries.filter { now - $0.value.learned < ttl }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[member] = Entry(floor: floor, learned: now)
        }
    }

    func remove(_ member: MemberID) {
        lock.withLock { entries[member] = nil }
    }

    func removeAll() {
        lock.withLock { entries.removeAll() }
    }

    var count: Int { lock.withLock { entries.count } }
}

extension Match {
    /// True when `self` ranks strictly before `floor` (SCORING.md order): the
    /// only offers that may enter a full set whose lowest entry is `floor`.
    @inlinable
    func beats(_ floor: Match) -> Bool {
        Match.ranksBefore(self, floor)
    }
}
