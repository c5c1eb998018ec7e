import KindredSupport
import Scoring
import ScoreStore
import Synchronization

/// Ranked sets recently read, so that paging through a member's matches
/// reads the whole set from its shard once, not once per page.
///
/// An entry is only ever served after the caller has read the set's meta
/// from the shard and found it equal to the entry's: the meta's `changes`
/// counter moves on every write and placement, and `written` with every
/// whole write (and every lifetime of the set), so a cached set is never
/// staler than the meta read in the same request. A set that placements
/// changed since is brought up to date from its change log
/// (``apply(_:shard:from:to:changes:)``, read with the meta in one atomic
/// step), which keeps exactly what a whole read would give; anything else
/// is read whole again. Beside it, the set's visible ranking (what a reader
/// serves: ``Visibility``) for the snapshot and marks versions it was
/// computed under.
///
/// Entries are ranked keys, `(100 - tenths) << 32 | id`, ascending in
/// SCORING.md's order: 8 bytes a match. Eviction is CLOCK (second chance)
/// over a fixed number of slots: O(1) per operation, no per-hit allocation.
package final class RankedSetCache: Sendable {
    struct Slot {
        var member: MemberID
        var shard: UInt32
        var meta: ScoreStore.SetMeta
        var ranked: [UInt64]
        var referenced: Bool
        /// The visible ranking (``Visibility``) under ``viewKey``.
        var view: [UInt64]?
        var viewKey = ViewKey(snapshot: -1, marks: -1)
    }

    /// What a visible ranking depends on besides the set: the snapshot's
    /// version and the marks' version.
    package struct ViewKey: Sendable, Hashable {
        package var snapshot: Int
        package var marks: Int
    }

    private struct State {
        var slots: [Slot] = []
        var index: [MemberID: Int] = [:]
        /// The CLOCK hand.
        var hand = 0
        var hits = 0
        var misses = 0
        var applied = 0
    }

    private let state: Mutex<State>
    package let capacity: Int

    /// - Parameter capacity: sets kept (each up to N + S + W entries, and
    ///   a visible ranking of up to N).
    package init(capacity: Int) {
        self.capacity = max(0, capacity)
        var state = State()
        state.slots.reserveCapacity(self.capacity)
        self.state = Mutex(state)
    }

    /// The meta `member`'s cached copy was read with (to ask the shard for
    /// the changes since), nil when none is cached for this shard.
    package func copyMeta(_ member: MemberID, shard: UInt32) -> ScoreStore.SetMeta? {
        state.withLock { state in
            guard let slot = state.index[member], state.slots[slot].shard == shard, state.slots[slot].meta.answersVersion != Self.removedAnswersVersion else { return nil }
            return state.slots[slot].meta
        }
    }

    /// The cached ranking of `member`'s set, if it was cached from exactly
    /// this meta on this shard.
    /// - Parameter countingMiss: false for a look that another follows on a
    ///   miss (so a request counts one miss, not two).
    package func ranked(_ member: MemberID, shard: UInt32, meta: ScoreStore.SetMeta, countingMiss: Bool = true) -> [UInt64]? {
        lookup(member, shard: shard, meta: meta, countingMiss: countingMiss)?.ranked
    }

    /// The cached ranking of `member`'s set and the meta it was read with,
    /// when it was read from exactly `meta` (or brought to it by its changes).
    package func lookup(
        _ member: MemberID, shard: UInt32, meta: ScoreStore.SetMeta, countingMiss: Bool = true
    ) -> (ranked: [UInt64], meta: ScoreStore.SetMeta)? {
        state.withLock { state in
            guard let slot = state.index[member], state.slots[slot].shard == shard, state.slots[slot].meta == meta else {
                if countingMiss { state.misses += 1 }
                return nil
            }
            state.hits += 1
            state.slots[slot].referenced = true
            return (state.slots[slot].ranked, meta)
        }
    }

    /// Brings `member`'s cached copy, read with meta `copy`, to `meta` by
    /// applying `changes` (the set's log entries `copy.changes + 1 ...
    /// meta.changes`, read atomically with `meta`:
    /// ``ScoreStore/readMeta(_:shard:since:)``), and returns the ranking:
    /// exactly what a whole read at `meta` gives. The visible ranking kept
    /// beside it is dropped. Nil on any doubt (the copy is not at `copy` any
    /// more, or a change does not fit it: a score it should hold is not
    /// there); the caller then reads the set whole, and the copy is not
    /// served again until then.
    ///
    /// Cost: a binary search and a move of the entries after it per change
    /// (O(N) at worst, a few microseconds at N + S = 5,500).
    package func apply(
        _ member: MemberID, shard: UInt32, from copy: ScoreStore.SetMeta, to meta: ScoreStore.SetMeta, changes: [ScoreStore.SetChange]
    ) -> [UInt64]? {
        state.withLock { state in
            guard let slot = state.index[member], state.slots[slot].shard == shard else { return nil }
            if state.slots[slot].meta == meta {
                // Another reader brought it there first.
                state.hits += 1
                state.slots[slot].referenced = true
                return state.slots[slot].ranked
            }
            guard state.slots[slot].meta == copy else { return nil }
            // Moved out, so the array is not copied when no reader holds it.
            var ranked = state.slots[slot].ranked
            state.slots[slot].ranked = []
            state.slots[slot].view = nil
            guard Self.applying(changes, to: &ranked) else {
                state.slots[slot].meta.answersVersion = Self.removedAnswersVersion
                return nil
            }
            state.slots[slot].ranked = ranked
            state.slots[slot].meta = meta
            state.slots[slot].referenced = true
            state.applied += 1
            return ranked
        }
    }

    /// Applies log entries, in order, to a ranking (ranked keys, ascending):
    /// a member's previous entry (when the change says it had one) is taken
    /// out, its new one put in at its place, and a trim drops every entry
    /// ranked below the new floor. False when a change does not fit (a
    /// previous entry missing, a new one already there): the ranking is then
    /// unspecified and must not be used.
    package static func applying(_ changes: [ScoreStore.SetChange], to ranked: inout [UInt64]) -> Bool {
        for change in changes {
            if let previous = change.previous {
                let old = key(Match(id: change.member, tenths: previous))
                let at = lowerBound(old, in: ranked)
                guard at < ranked.count, ranked[at] == old else { return false }
                ranked.remove(at: at)
            }
            if let tenths = change.tenths {
                let new = key(Match(id: change.member, tenths: tenths))
                let at = lowerBound(new, in: ranked)
                guard at == ranked.count || ranked[at] != new else { return false }
                ranked.insert(new, at: at)
            }
            if let floor = change.trimmedTo {
                let below = lowerBound(key(floor) + 1, in: ranked)
                ranked.removeSubrange(below...)
            }
        }
        return true
    }

    /// The first index whose key is not below `key`.
    private static func lowerBound(_ key: UInt64, in ranked: [UInt64]) -> Int {
        var low = 0
        var high = ranked.count
        while low < high {
            let middle = (low + high) / 2
            if ranked[middle] < key { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// An answers version no set carries: the slot is not to be served (a deletion, a
    /// copy that a change did not fit).
    private static let removedAnswersVersion = "\u{0}removed"

    /// The visible ranking cached for `member`'s set with exactly this meta
    /// under `key`.
    package func view(_ member: MemberID, shard: UInt32, meta: ScoreStore.SetMeta, key: ViewKey) -> [UInt64]? {
        state.withLock { state in
            guard let slot = state.index[member], state.slots[slot].shard == shard, state.slots[slot].meta == meta,
                state.slots[slot].viewKey == key
            else { return nil }
            return state.slots[slot].view
        }
    }

    /// Keeps a visible ranking beside the cached set it was computed from.
    package func storeView(_ member: MemberID, shard: UInt32, meta: ScoreStore.SetMeta, key: ViewKey, view: [UInt64]) {
        state.withLock { state in
            guard let slot = state.index[member], state.slots[slot].shard == shard, state.slots[slot].meta == meta else { return }
            state.slots[slot].view = view
            state.slots[slot].viewKey = key
        }
    }

    package func store(_ member: MemberID, shard: UInt32, meta: ScoreStore.SetMeta, ranked: [UInt64]) {
        guard capacity > 0 else { return }
        state.withLock { state in
            let entry = Slot(member: member, shard: shard, meta: meta, ranked: ranked, referenced: false)
            if let slot = state.index[member] {
                state.slots[slot] = entry
                return
            }
            if state.slots.count < capacity {
                state.index[member] = state.slots.count
                state.slots.append(entry)
                return
            }
            while state.slots[state.hand].referenced {
                state.slots[state.hand].referenced = false
                state.hand = (state.hand + 1) % capacity
            }
            state.index[state.slots[state.hand].member] = nil
            state.index[member] = state.hand
            state.slots[state.hand] = entry
            state.hand = (state.hand + 1) % capacity
        }
    }

    /// Forgets `member`'s set (a deletion).
    package func remove(_ member: MemberID) {
        state.withLock { state in
            guard let slot = state.index[member] else { return }
            state.slots[slot].meta.answersVersion = Self.removedAnswersVersion
            state.slots[slot].ranked = []
            state.slots[slot].view = nil
            state.slots[slot].referenced = false
        }
    }

    package var count: Int { state.withLock { state in state.index.count } }

    /// Look-ups that found a valid entry, those that did not, and copies
    /// brought up to date from their set's change log.
    package var stats: (hits: Int, misses: Int, applied: Int) { state.withLock { state in (state.hits, state.misses, state.applied) } }

    /// A ranked key: score descending, then id ascending, as one integer.
    @inline(__always)
    package static func key(_ match: Match) -> UInt64 { UInt64(100 - Int(match.tenths)) << 32 | UInt64(match.id) }
    @inline(__always)
    package static func id(_ key: UInt64) -> MemberID { MemberID(truncatingIfNeeded: key) }
    @inline(__always)
    package static func tenths(_ key: UInt64) -> Int { 100 - Int(key >> 32) }
}
