import KindredSupport
import MariaDBClient
import Scoring
import Synchronization

/// An active shard's share of the directory, as the picker sees it.
package struct ShardLoad: Sendable, Hashable {
    package var id: UInt32
    package var weight: Int
    package var assigned: Int

    package init(id: UInt32, weight: Int, assigned: Int) {
        self.id = id
        self.weight = weight
        self.assigned = assigned
    }
}

/// Chooses the shard for a new member: the active shard with the most room
/// for its weight, i.e. the lowest `assigned / weight` (compared exactly,
/// by cross-multiplying), ties going to the lowest id. Pure; the caller
/// passes only active shards.
package enum ShardPicker {
    package static func pick(_ loads: [ShardLoad]) -> UInt32? {
        var best: ShardLoad?
        for load in loads where load.weight > 0 {
            guard let current = best else {
                best = load
                continue
            }
            let lhs = load.assigned * current.weight
            let rhs = current.assigned * load.weight
            if lhs < rhs || (lhs == rhs && load.id < current.id) { best = load }
        }
        return best?.id
    }
}

/// The member-to-shard directory (`member_shards`): which shard holds each
/// member's score set, with an in-process cache.
///
/// - ``shard(of:in:)`` answers from the cache, then MySQL.
/// - ``assign(_:in:)`` gives a member without a shard the active shard with the
///   most room for its weight (``ShardPicker``). It is idempotent under
///   races between threads and processes: the row is written with
///   `INSERT IGNORE` (only if the chosen shard is still active) and then read
///   back, so whoever wrote first decides and everyone returns that shard.
/// - Draining and down shards get no new members; members already on them
///   keep them until ``release(_:in:)``.
///
/// The per-shard counts the picker uses are read from MySQL at most every
/// ``loadRefreshInterval`` and counted up locally in between, so several
/// processes assigning at once stay near the weights without a query per
/// assignment. A shard added or drained elsewhere is seen within that
/// interval (``reloadShards(in:)`` forces it); the `INSERT ... SELECT` checks
/// the state on every write, so a shard that went inactive never gets a
/// member from a stale view.
///
/// Cache: entries live until ``release(_:in:)`` in this process; a member
/// released by another process may be reported on its old shard here until
/// the cache is cleared (``clearCache()``), which happens by itself when it
/// exceeds ``cacheCapacity`` entries.
///
/// Threads: safe to use from any number of threads. The directory holds no
/// connection: what it reads or writes in MySQL goes over the caller's own
/// ``StoreSession`` (with the retry helper), so one thread's slow statement
/// or retry sleep never holds up another thread's look-up. Cache hits take
/// only a short lock, never held across a MySQL call.
package final class ShardDirectory: Sendable {
    package let retry: RetryPolicy
    package let loadRefreshInterval: Duration
    package let cacheCapacity: Int

    private struct State {
        var cache: [MemberID: UInt32] = [:]
        /// Members known to have no shard, until the instant given.
        var unassigned: [MemberID: ContinuousClock.Instant] = [:]
        var loads: [ShardLoad] = []
        var loadsReadAt: ContinuousClock.Instant?
        /// Raised each time `loads` is replaced by a fresh read: a pick is taken
        /// back only from the counts it was added to.
        var loadsEpoch = 0
    }
    /// The caches, each touched only under this lock, never held across a
    /// MySQL call.
    private let state = Mutex(State())
    /// How long "has no shard" is trusted by ``cachedShard(of:)``. A `let`:
    /// the directory is shared between threads, and its lock guards only
    /// the caches.
    package let unassignedTTL: Duration
    private let clock = ContinuousClock()

    package init(
        retry: RetryPolicy = RetryPolicy(giveUpAfter: .seconds(5)),
        loadRefreshInterval: Duration = .seconds(5),
        cacheCapacity: Int = 1_000_000,
        unassignedTTL: Duration = .seconds(30)
    ) {
        self.retry = retry
        self.loadRefreshInterval = loadRefreshInterval
        self.cacheCapacity = cacheCapacity
        self.unassignedTTL = unassignedTTL
    }

    /// Members whose shard the cache holds: what a reader can still find
    /// while MySQL is unreachable (the web backend's readiness).
    package var cachedAssignments: Int { state.withLock { $0.cache.count } }

    /// The member's shard, or `nil` when they have none.
    package func shard(of member: MemberID, in session: StoreSession) throws -> UInt32? {
        if let cached = state.withLock({ $0.cache[member] }) { return cached }
        let shard = try session.withRetry(policy: retry) { session in
            try Self.storedShard(of: member, on: session.link)
        }
        if let shard { remember(member, shard) }
        return shard
    }

    /// The member's shard, assigning one first if they have none.
    ///
    /// Always asks MySQL (one primary-key read when the member has a shard),
    /// never the cache: another process may have released the member since
    /// this one cached them (`kindred evict`, a deletion), and a set written
    /// to the cached shard would then have no row in the directory.
    /// - Throws: ``MemberStoreError/Code/noActiveShard`` when no shard is active.
    package func assign(_ member: MemberID, in session: StoreSession) throws -> UInt32 {
        let shard = try session.withRetry(policy: retry) { session in
            let connection = session.link
            if let existing = try Self.storedShard(of: member, on: connection) { return existing }
            for attempt in 0..<3 {
                _ = try currentLoads(on: connection, forceReload: attempt > 0)
                // Picked and counted in one step: threads assigning at once (each on its own
                // session) see each other's picks and stay near the weights.
                guard let (choice, epoch) = reservePick() else {
                    if attempt == 0 { continue }  // the cached view may predate a shard's activation
                    break
                }
                let inserted: UInt64
                do {
                    inserted = try connection.execute(
                        """
                        INSERT IGNORE INTO member_shards (member_id, shard_id, assigned_at)
                        SELECT ?, id, UTC_TIMESTAMP(6) FROM shards WHERE id = ? AND state = 'active'
                        """, [.uint(UInt64(member)), .uint(UInt64(choice))]
                    ).affectedRows
                } catch {
                    takeBack(choice, epoch)
                    throw error
                }
                // Nothing written: another thread or process assigned the member first, or the
                // shard stopped being active.
                if inserted == 0 { takeBack(choice, epoch) }
                if let stored = try Self.storedShard(of: member, on: connection) {
                    return stored
                }
                // The chosen shard stopped being active since the loads were read: read them again.
            }
            throw MemberStoreError(.noActiveShard, "no shard is active: add one with `kindred shards add`")
        }
        remember(member, shard)
        return shard
    }

    /// Removes the member's assignment (after the score store removed their
    /// set): their next ``assign(_:in:)`` picks a shard afresh.
    package func release(_ member: MemberID, in session: StoreSession) throws {
        try session.withRetry(policy: retry) { session in
            try session.link.execute("DELETE FROM member_shards WHERE member_id = ?", [.uint(UInt64(member))])
        }
        state.withLock { state in
            state.cache[member] = nil
            state.loadsReadAt = nil  // counts changed: read them again on the next assignment
        }
    }

    /// Members assigned to `shard`, ascending, after `after`, at most `limit`.
    package func members(onShard shard: UInt32, after: MemberID = 0, limit: Int = 10_000, in session: StoreSession) throws -> [MemberID] {
        try session.withRetry(policy: retry) { session in
            try session.link.query(
                "SELECT member_id FROM member_shards WHERE shard_id = ? AND member_id > ? ORDER BY member_id LIMIT ?",
                [.uint(UInt64(shard)), .uint(UInt64(after)), SQLValue(limit)]
            ).map { MemberID(truncatingIfNeeded: $0.uint(0) ?? 0) }
        }
    }

    /// Reads the active shards and their counts from MySQL now, instead of
    /// waiting for ``loadRefreshInterval`` (after adding or draining a shard).
    package func reloadShards(in session: StoreSession) throws {
        _ = try session.withRetry(policy: retry) { session in
            try currentLoads(on: session.link, forceReload: true)
        }
    }

    /// Takes what a read of `member_shards` made elsewhere found (a job's
    /// one-visit read): their shard, or none.
    package func learned(_ member: MemberID, shard: UInt32?) {
        if let shard {
            remember(member, shard)
        } else {
            state.withLock { $0.cache[member] = nil }
        }
    }

    /// Forgets what the cache knows of `member` (their assignment may have
    /// been released by another process: an eviction, a deletion), so the
    /// next look-up asks MySQL.
    package func forget(_ member: MemberID) {
        state.withLock { state in
            state.cache[member] = nil
            state.unassigned[member] = nil
            state.loadsReadAt = nil  // the shards' loads changed too
        }
    }

    /// Forgets every cached member-to-shard entry.
    package func clearCache() {
        state.withLock { state in
            state.cache.removeAll()
            state.unassigned.removeAll()
        }
    }

    /// Reads the shards of every member in `members` that the cache does not
    /// know, 1000 per query, so that ``cachedShard(of:)`` can answer for all
    /// of them without touching MySQL. Members without a shard are
    /// remembered as such for ``unassignedTTL``.
    ///
    /// Cost: one query per 1000 unknown members (a job's 5000 matches are
    /// mostly cached after the first few jobs).
    package func prefetch(_ members: some Collection<MemberID>, in session: StoreSession) throws {
        let now = clock.now
        let unknown = state.withLock { state -> [MemberID] in
            members.filter { state.cache[$0] == nil && (state.unassigned[$0].map { $0 <= now } ?? true) }
        }
        guard !unknown.isEmpty else { return }
        let chunkSize = 1000
        let sql = "SELECT member_id, shard_id FROM member_shards WHERE member_id IN ("
            + Array(repeating: "?", count: chunkSize).joined(separator: ",") + ")"
        for start in stride(from: 0, to: unknown.count, by: chunkSize) {
            let chunk = unknown[start..<min(unknown.count, start + chunkSize)]
            // One statement shape: the last chunk repeats its last id (duplicates in IN are harmless).
            var values = chunk.map { SQLValue.uint(UInt64($0)) }
            while values.count < chunkSize { values.append(values[values.count - 1]) }
            let rows = try session.withRetry(policy: retry) { session in
                try session.link.query(sql, values).map {
                    (MemberID(truncatingIfNeeded: $0.uint(0) ?? 0), UInt32(truncatingIfNeeded: $0.uint(1) ?? 0))
                }
            }
            let expiry = now.advanced(by: unassignedTTL)
            state.withLock { state in
                if state.cache.count + rows.count >= cacheCapacity { state.cache.removeAll(keepingCapacity: true) }
                if state.unassigned.count + chunk.count >= cacheCapacity { state.unassigned.removeAll(keepingCapacity: true) }
                for (member, shard) in rows { state.cache[member] = shard }
                for member in chunk where state.cache[member] == nil { state.unassigned[member] = expiry }
            }
        }
    }

    /// The member's shard if the cache knows it; nil when unknown or known to
    /// have none. Never touches MySQL (call ``prefetch(_:in:)`` first).
    package func cachedShard(of member: MemberID) -> UInt32? {
        state.withLock { $0.cache[member] }
    }

    // MARK: - Internals

    private func remember(_ member: MemberID, _ shard: UInt32) {
        state.withLock { state in
            if state.cache.count >= cacheCapacity { state.cache.removeAll(keepingCapacity: true) }
            state.cache[member] = shard
            state.unassigned[member] = nil
        }
    }

    /// Takes back a pick whose write did not happen, unless the loads were
    /// read again since (the fresh counts never held it).
    private func takeBack(_ shard: UInt32, _ epoch: Int) {
        state.withLock { state in
            guard state.loadsEpoch == epoch, let index = state.loads.firstIndex(where: { $0.id == shard }) else { return }
            state.loads[index].assigned = max(0, state.loads[index].assigned - 1)
        }
    }

    /// Picks the shard for a new member from the loads in hand and counts
    /// the member on it at once (undone when the write does not happen).
    private func reservePick() -> (shard: UInt32, epoch: Int)? {
        state.withLock { state in
            guard let choice = ShardPicker.pick(state.loads) else { return nil }
            if let index = state.loads.firstIndex(where: { $0.id == choice }) { state.loads[index].assigned += 1 }
            return (choice, state.loadsEpoch)
        }
    }

    /// The active shards' loads, read from MySQL when older than the refresh interval.
    private func currentLoads(on connection: MariaDBConnection, forceReload: Bool) throws -> [ShardLoad] {
        let now = clock.now
        if !forceReload, let cached = state.withLock({ state -> [ShardLoad]? in
            guard let readAt = state.loadsReadAt, now - readAt < loadRefreshInterval else { return nil }
            return state.loads
        }) {
            return cached
        }
        let fresh = try connection.query(
            """
            SELECT s.id, s.weight, (SELECT COUNT(*) FROM member_shards ms WHERE ms.shard_id = s.id)
            FROM shards s WHERE s.state = 'active' ORDER BY s.id
            """
        ).map { row in
            ShardLoad(
                id: UInt32(truncatingIfNeeded: row.uint(0) ?? 0), weight: Int(row.int(1) ?? 0),
                assigned: Int(row.int(2) ?? 0))
        }
        state.withLock { state in
            state.loads = fresh
            state.loadsReadAt = now
            state.loadsEpoch &+= 1
        }
        return fresh
    }

    private static func storedShard(of member: MemberID, on connection: MariaDBConnection) throws -> UInt32? {
        try connection.query("SELECT shard_id FROM member_shards WHERE member_id = ?", [.uint(UInt64(member))])
            .first?.uint(0).map { UInt32(truncatingIfNeeded: $0) }
    }
}
