import KindredSupport
import Scoring
import ScoreStore

/// Ranked sets recently read, so that paging through a member's matches
/// reads the whole set from its shard once, not once per page.
///
/// An entry is only ever served after the caller has read the set's meta
/// from the shard and found it unchanged: the meta's `changes` counter moves
/// on every write, offer and removal, and its stamp and generation time
/// change with every regeneration, so a cached set is never staler than
/// the meta read in the same request. Beside it, the set's visible ranking
/// (what a reader serves: ``Visibility``) for the snapshot and marks
/// versions it was computed under.
///
/// Entries are ranked keys, `(100 - tenths) << 32 | id`, ascending in
/// SCORING.md's order: 8 bytes a match. Eviction is CLOCK (second chance)
/// over a fixed number of slots: O(1) per operation, no per-hit allocation.
public final class RankedSetCache: @unchecked Sendable {
    // @unchecked Sendable: all state is guarded by `lock`.
    struct Slot {
        var member: MemberID
        var shard: UInt32
        var meta: ScoreStore.SetMeta
        var ranked: [UInt64]
        var referenced: Bool
        /// The visible ranking (``Visibility``) under ``viewKey``.
        var view: [UInt64]?
        var viewKey = ViewKey(snapshot: -1, marks: -1)
        /// When the set was read from its shard.
        var fetched: ContinuousClock.Instant
    }

    /// What a visible ranking depends on besides the set: the snapshot's
    /// version and the marks' version.
    public struct ViewKey: Sendable, Hashable {
        public var snapshot: Int
        public var marks: Int
    }

    private let lock = Lock()
    private var slots: [Slot] = []
    private var index: [MemberID: Int] = [:]
    private var hand = 0
    public let capacity: Int
    /// How long a ranking stays servable after placements changed its set
    /// (the set's whole write is the same one): members entering, leaving
    /// or moving in the set show within this. Deletions and blocks are
    /// hidden at once by the marks and the snapshot whatever the cache
    /// holds; a rewritten set (new stamp or write time) is never served
    /// from an older copy.
    public let placementStaleness: Duration
    private var hits = 0
    private var misses = 0

    /// - Parameter capacity: sets kept (each up to N + 2 slack entries, and
    ///   a visible ranking of up to N).
    public init(capacity: Int, placementStaleness: Duration = .seconds(1)) {
        self.capacity = max(0, capacity)
        self.placementStaleness = placementStaleness
        slots.reserveCapacity(self.capacity)
    }

    /// The cached ranking of `member`'s set, if it was cached from exactly
    /// this meta on this shard.
    /// - Parameter countingMiss: false for a look that another follows on a
    ///   miss (so a request counts one miss, not two).
    public func ranked(_ member: MemberID, shard: UInt32, meta: ScoreStore.SetMeta, countingMiss: Bool = true) -> [UInt64]? {
        lookup(member, shard: shard, meta: meta, countingMiss: countingMiss)?.ranked
    }

    /// The cached ranking of `member`'s set and the meta it was read with,
    /// when it was read from exactly `meta`, or from the same whole write
    /// less than ``placementStaleness`` ago (only placements changed it since).
    public func lookup(
        _ member: MemberID, shard: UInt32, meta: ScoreStore.SetMeta, countingMiss: Bool = true
    ) -> (ranked: [UInt64], meta: ScoreStore.SetMeta)? {
        let now = ContinuousClock.now
        return lock.withLock {
            guard let slot = index[member], slots[slot].shard == shard else {
                if countingMiss { misses += 1 }
                return nil
            }
            let cached = slots[slot].meta
            let sameWrite = cached.written == meta.written && cached.stamp == meta.stamp
                && cached.generatedAt == meta.generatedAt && cached.limit == meta.limit
            guard cached == meta || (sameWrite && now - slots[slot].fetched < placementStaleness) else {
                if countingMiss { misses += 1 }
                return nil
            }
            hits += 1
            slots[slot].referenced = true
            return (slots[slot].ranked, cached)
        }
    }

    /// The visible ranking cached for `member`'s set with exactly this meta
    /// under `key`.
    public func view(_ member: MemberID, shard: UInt32, meta: ScoreStore.SetMeta, key: ViewKey) -> [UInt64]? {
        lock.withLock {
            guard let slot = index[member], slots[slot].shard == shard, slots[slot].meta == meta,
                slots[slot].viewKey == key
            else { return nil }
            return slots[slot].view
        }
    }

    /// Keeps a visible ranking beside the cached set it was computed from.
    public func storeView(_ member: MemberID, shard: UInt32, meta: ScoreStore.SetMeta, key: ViewKey, view: [UInt64]) {
        lock.withLock {
            guard let slot = index[member], slots[slot].shard == shard, slots[slot].meta == meta else { return }
            slots[slot].view = view
            slots[slot].viewKey = key
        }
    }

    public func store(_ member: MemberID, shard: UInt32, meta: ScoreStore.SetMeta, ranked: [UInt64]) {
        guard capacity > 0 else { return }
        lock.withLock {
            let entry = Slot(member: member, shard: shard, meta: meta, ranked: ranked, referenced: false, fetched: .now)
            if let slot = index[member] {
                slots[slot] = entry
                return
            }
            if slots.count < capacity {
                index[member] = slots.count
                slots.append(entry)
                return
            }
            while slots[hand].referenced {
                slots[hand].referenced = false
                hand = (hand + 1) % capacity
            }
            index[slots[hand].member] = nil
            index[member] = hand
            slots[hand] = entry
            hand = (hand + 1) % capacity
        }
    }

    /// Forgets `member`'s set (a deletion).
    public func remove(_ member: MemberID) {
        lock.withLock {
            guard let slot = index[member] else { return }
            slots[slot].meta.stamp = "\u{0}removed"
            slots[slot].ranked = []
            slots[slot].view = nil
            slots[slot].referenced = false
        }
    }

    public var count: Int { lock.withLock { index.count } }

    /// Look-ups that found a valid entry, and those that did not.
    public var stats: (hits: Int, misses: Int) { lock.withLock { (hits, misses) } }

    /// A ranked key: score descending, then id ascending, as one integer.
    @inline(__always)
    public static func key(_ match: Match) -> UInt64 { UInt64(100 - Int(match.tenths)) << 32 | UInt64(match.id) }
    @inline(__always)
    public static func id(_ key: UInt64) -> MemberID { MemberID(truncatingIfNeeded: key) }
    @inline(__always)
    public static func tenths(_ key: UInt64) -> Int { 100 - Int(key >> 32) }
}
