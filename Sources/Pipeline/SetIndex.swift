import KindredSupport
import MemberStore
import Scoring

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
public final class SetIndex: Sendable {
    public struct Entry: Sendable, Hashable {
        public var shard: UInt32
        /// The floor as a rank key (``rankKey(tenths:id:)``); `UInt64.max`
        /// when the set holds every candidate.
        public var floorKey: UInt64
        /// Microseconds of the server clock; 0 when unknown.
        public var coveredAt: Int64
        /// Unix milliseconds of the write.
        public var generatedAt: Int64

        /// Whether a candidate with this score would stand in the set.
        @inline(__always)
        public func admits(tenths: Int, id: MemberID) -> Bool { SetIndex.rankKey(tenths: tenths, id: id) <= floorKey }
    }

    private let lock = Lock()
    private nonisolated(unsafe) var entries: [MemberID: Entry] = [:]
    // nonisolated(unsafe): only touched inside `lock.withLock`.

    public init() {}

    /// SCORING.md's rank order as one integer: ascending keys rank first.
    @inline(__always)
    public static func rankKey(tenths: Int, id: MemberID) -> UInt64 { UInt64(100 - tenths) << 32 | UInt64(id) }

    /// Applies records read from MySQL, keeping for each member the newest.
    public func apply(_ records: [SetRecord], replacingAll: Bool = false) {
        lock.withLock {
            if replacingAll { entries.removeAll(keepingCapacity: true) }
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
    public func wrote(_ member: MemberID, entry: Entry) {
        lock.withLock {
            if let known = entries[member], known.generatedAt > entry.generatedAt { return }
            entries[member] = entry
        }
    }

    public func entry(of member: MemberID) -> Entry? { lock.withLock { entries[member] } }

    /// The entries of many members under one lock (nil: no set known).
    public func entries<S: Sequence<MemberID>>(of members: S) -> [MemberID: Entry] {
        lock.withLock {
            var found: [MemberID: Entry] = [:]
            for member in members { if let entry = entries[member] { found[member] = entry } }
            return found
        }
    }

    /// Calls `body` with a look-up of the entries, under one lock (keep it short).
    public func withEntries<T>(_ body: ((MemberID) -> Entry?) -> T) -> T {
        lock.withLock { body { entries[$0] } }
    }

    public var count: Int { lock.withLock { entries.count } }
}
