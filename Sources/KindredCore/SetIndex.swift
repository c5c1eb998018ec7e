import KindredSupport
import MemberStore
import Scoring
import Synchronization

/// What this process knows of every stored set, from MySQL's generation
/// records (``MemberStore/SetRecord``): where it is, its floor as written,
/// and what its scan covered. A publication uses it to skip, without any
/// round trip, the sets its member's change cannot concern.
///
/// **Why a stale entry never hides a correction.** A set's floor only
/// rises between whole writes (trims), so a floor known from the write is
/// at or below the real one: a member ranked below it is certainly not in
/// the set. A whole write can lower the floor, and it is recorded in MySQL
/// before the writer catches up on changes made during its scan; every
/// publication refreshes this index from MySQL after it started, so either
/// the writer's catch-up saw the member's change, or the publication sees
/// the new floor. Entries are only ever replaced by newer records (by
/// `generated_at`); a set removed since (its record forgotten) only costs a
/// placement that finds no set, until the next full reload.
package final class SetIndex: Sendable {
    package struct Entry: Sendable, Hashable {
        package var shard: UInt32
        /// The floor as a rank key (``rankKey(tenths:id:)``); `UInt64.max`
        /// when the set holds every candidate.
        package var floorKey: UInt64
        /// Microseconds of the server clock; 0 when unknown.
        package var coveredAt: Int64
        /// Unix milliseconds of the write.
        package var generatedAt: Int64

        /// Whether a candidate with this score would stand in the set.
        @inline(__always)
        package func admits(tenths: Int, id: MemberID) -> Bool { SetIndex.rankKey(tenths: tenths, id: id) <= floorKey }
    }

    private let entries = Mutex(EntryTable())

    package init() {}

    /// SCORING.md's rank order as one integer: ascending keys rank first.
    @inline(__always)
    package static func rankKey(tenths: Int, id: MemberID) -> UInt64 { UInt64(100 - tenths) << 32 | UInt64(id) }

    /// Applies records read from MySQL, keeping for each member the newest.
    package func apply(_ records: [SetRecord], replacingAll: Bool = false) {
        entries.withLock { entries in
            if replacingAll { entries.removeAll() }
            for record in records {
                let entry = Entry(
                    shard: record.shard,
                    floorKey: record.floor.map { Self.rankKey(tenths: Int($0.tenths), id: $0.id) } ?? .max,
                    coveredAt: record.coveredAt.microseconds, generatedAt: record.generatedAt)
                if let known = entries[record.member], known.generatedAt > entry.generatedAt { continue }
                entries[record.member] = entry
            }
        }
    }

    /// Records a set this process just wrote (before MySQL's record of it
    /// is read back).
    package func wrote(_ member: MemberID, entry: Entry) {
        entries.withLock { entries in
            if let known = entries[member], known.generatedAt > entry.generatedAt { return }
            entries[member] = entry
        }
    }

    package func entry(of member: MemberID) -> Entry? { entries.withLock { $0[member] } }

    /// The entries of many members under one lock (nil: no set known).
    package func entries<S: Sequence<MemberID>>(of members: S) -> [MemberID: Entry] {
        entries.withLock { entries in
            var found: [MemberID: Entry] = [:]
            for member in members { if let entry = entries[member] { found[member] = entry } }
            return found
        }
    }

    /// Calls `body` with a look-up of the entries, under one lock (keep it short).
    package func withEntries<T>(_ body: ((MemberID) -> Entry?) -> T) -> T {
        // A copy of the table (copy-on-write: no copying), looked up outside the lock.
        let table = entries.withLock { $0 }
        return body { table[$0] }
    }

    package var count: Int { entries.withLock { $0.count } }
}

/// The set index's map from member to entry: an open-addressing hash table
/// with linear probing over two arrays (keys, entries), sized to a power
/// of two and at most half full.
///
/// A publication looks up every candidate of its member (~10,000 at
/// 100,000 members) in ~40,000 entries; through `Dictionary` that was ~16%
/// of a worker's CPU per registration (SipHash of each id, then the probe,
/// BENCHMARKS.md). Here an id's slot comes from one multiplication and a
/// probe reads 4-byte keys: what a lookup touches is a cache line or two.
/// Entries are only added or replaced, never removed one by one (a full
/// reload clears the table), so a probe never meets a tombstone. Slot 0 of
/// the key array is not special: `used` says which slots hold an entry.
struct EntryTable {
    private var keys: [UInt32] = []
    private var used: [Bool] = []
    private var values: [SetIndex.Entry] = []
    private(set) var count = 0

    /// Slots in use before the table doubles: at most half.
    private var capacity: Int { keys.count / 2 }

    /// Fibonacci hashing: the id times 2^64 / phi, the product's top
    /// log2(size) bits the slot (ids in a row land far apart).
    @inline(__always)
    private func slot(of key: UInt32) -> Int {
        Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - keys.count.trailingZeroBitCount))
    }

    subscript(key: UInt32) -> SetIndex.Entry? {
        get {
            guard !keys.isEmpty else { return nil }
            let mask = keys.count - 1
            var index = slot(of: key)
            while used[index] {
                if keys[index] == key { return values[index] }
                index = (index + 1) & mask
            }
            return nil
        }
        set {
            guard let newValue else {
                preconditionFailure("the set index never removes one entry (a full reload clears it)")
            }
            if count + 1 > capacity { grow() }
            let mask = keys.count - 1
            var index = slot(of: key)
            while used[index] {
                if keys[index] == key {
                    values[index] = newValue
                    return
                }
                index = (index + 1) & mask
            }
            used[index] = true
            keys[index] = key
            values[index] = newValue
            count += 1
        }
    }

    /// Empties the table, keeping its size (a full reload refills it).
    mutating func removeAll() {
        for index in used.indices { used[index] = false }
        count = 0
    }

    private mutating func grow() {
        let size = max(64, keys.count * 2)
        let placeholder = SetIndex.Entry(shard: 0, floorKey: 0, coveredAt: 0, generatedAt: 0)
        var bigger = EntryTable()
        bigger.keys = Array(repeating: 0, count: size)
        bigger.used = Array(repeating: false, count: size)
        bigger.values = Array(repeating: placeholder, count: size)
        for index in keys.indices where used[index] { bigger[keys[index]] = values[index] }
        self = bigger
    }
}
