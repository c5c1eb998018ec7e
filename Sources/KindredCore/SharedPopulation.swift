import KindredSupport
import MemberStore
import Scoring

/// The population snapshot shared by every thread of a process: scans run
/// in parallel under the read lock, changes are applied under the write
/// lock between them. `Population` itself is not thread-safe; this type is
/// the only way other threads reach it.
///
/// **Version and change log.** Every write that changes a member's record
/// (its answers version, the population's tag) or removes one bumps
/// ``version`` and logs the member under the new version, so a job that
/// scanned at version V can ask which members changed since
/// (``changedMembers(since:)``): the ones its set may rank wrongly. A
/// record re-applied unchanged (the refresher's overlap, a login) changes
/// nothing a scan reads and bumps nothing.
package final class SharedPopulation: @unchecked Sendable {
    // Why this is safe: every stored var is only touched inside `lock`'s
    // read or write sections (the log and the counters under the write lock);
    // readers only call `Population`'s reading methods, which mutate nothing,
    // so any number may run at once; `population` is never handed out except
    // to a `read` body, which must not keep it.
    private let lock = ReadWriteLock()
    private let population: Population
    private var refreshedAt: ContinuousClock.Instant
    private var writes = 0
    /// The last `logCapacity` changes: (version, member).
    private var log: [(version: Int, member: MemberID)] = []
    private var logStart = 0
    /// The highest version whose log entries were dropped for room.
    private var droppedThrough = 0
    private let logCapacity: Int

    package init(_ population: Population, logCapacity: Int = 1 << 16) {
        self.population = population
        self.logCapacity = max(16, logCapacity)
        refreshedAt = .now
        log.reserveCapacity(self.logCapacity)
    }

    package var survey: Survey { population.survey }

    /// Runs `body` with read access; any number at once.
    package func read<T, E: Error>(_ body: (Population) throws(E) -> T) throws(E) -> T {
        try lock.withReadLock { () throws(E) -> T in try body(population) }
    }

    /// Runs `body` with read access and the version: a value derived from
    /// the population under one version is valid while the version stays.
    package func read<T, E: Error>(withVersion body: (Population, Int) throws(E) -> T) throws(E) -> T {
        try lock.withReadLock { () throws(E) -> T in try body(population, writes) }
    }

    /// Inserts or replaces `member` (validated first), tagged with its
    /// answers `version`. A record whose version the snapshot holds already
    /// only updates its last activity. Returns whether the record changed.
    @discardableResult
    package func upsert(_ member: Member, version: UInt64) throws(MemberValidationError) -> Bool {
        try lock.withWriteLock { () throws(MemberValidationError) -> Bool in
            refreshedAt = .now
            if population.tag(of: member.id) == version {
                population.setLastActive(member.id, member.lastActive)
                return false
            }
            try population.upsert(member, tag: version)
            logChange(member.id)
            return true
        }
    }

    /// Removes a member; returns their last record (nil when absent).
    @discardableResult
    package func remove(_ id: MemberID) -> Member? {
        lock.withWriteLock {
            guard let old = population.member(id) else { return nil }
            population.remove(id)
            logChange(id)
            return old
        }
    }

    /// Applies changes read from MySQL (``MemberStore/SnapshotLoader/changes(since:survey:)``):
    /// changed records are upserted, deleted and invalid members removed
    /// (`onRemove` gets their last record), unchanged ones only refresh
    /// their activity. Re-sorts the population when its tail has grown.
    /// Returns how many members changed.
    @discardableResult
    package func apply(_ changes: SnapshotChanges, onRemove: (Member) -> Void = { _ in }) -> Int {
        lock.withWriteLock {
            refreshedAt = .now
            var changed = 0
            for (member, version) in zip(changes.members, changes.versions) {
                if population.tag(of: member.id) == version {
                    population.setLastActive(member.id, member.lastActive)
                    continue
                }
                do {
                    try population.upsert(member, tag: version)
                    logChange(member.id)
                    changed += 1
                } catch {
                    // Validated by the loader; an invalid record changes nothing.
                }
            }
            for (id, lastActive) in changes.activity { population.setLastActive(id, lastActive) }
            for id in changes.deleted + changes.invalid.map(\.id) {
                guard let old = population.member(id) else { continue }
                onRemove(old)
                population.remove(id)
                logChange(id)
                changed += 1
            }
            population.organizeIfNeeded()
            return changed
        }
    }

    /// The members whose record changed (or who were removed) after
    /// `version`, each once; nil when the log no longer reaches back that
    /// far (more than its capacity of changes since).
    package func changedMembers(since version: Int) -> [MemberID]? {
        lock.withReadLock {
            guard version >= droppedThrough else { return nil }
            var seen = Set<MemberID>()
            var result: [MemberID] = []
            let count = log.count
            for offset in 0..<count {
                let entry = log[(logStart + offset) % count]
                if entry.version > version, seen.insert(entry.member).inserted { result.append(entry.member) }
            }
            return result
        }
    }

    /// Must hold the write lock.
    private func logChange(_ id: MemberID) {
        writes &+= 1
        if log.count < logCapacity {
            log.append((writes, id))
        } else {
            droppedThrough = log[logStart].version
            log[logStart] = (writes, id)
            logStart = (logStart + 1) % logCapacity
        }
    }

    /// Records a refresh that found nothing to change: the snapshot's age
    /// restarts, its version (and what callers cached under it) stays.
    package func markRefreshed() {
        lock.withWriteLock { refreshedAt = .now }
    }

    /// The number of changes so far.
    package var version: Int { lock.withReadLock { writes } }

    /// How long since the last refresh (the snapshot's age, for metrics).
    package var age: Duration { lock.withReadLock { ContinuousClock.now - refreshedAt } }
}
