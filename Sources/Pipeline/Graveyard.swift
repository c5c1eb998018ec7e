import Foundation
import KindredSupport
import Scoring

/// The last records of members removed from the snapshot (deleted, or made
/// invalid in MySQL), kept for a while: removing a deleted member from every
/// set that holds them needs their candidates, which needs their record,
/// which MySQL no longer has (a tombstone keeps no personal data).
/// Bounded by age and by count.
public final class Graveyard: @unchecked Sendable {
    // @unchecked Sendable: `records` is guarded by `lock`.
    private let lock = Lock()
    private var records: [MemberID: (member: Member, at: ContinuousClock.Instant)] = [:]
    private let ttl: Duration
    private let capacity: Int

    public init(ttl: Duration, capacity: Int = 100_000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    public func bury(_ member: Member) {
        let now = ContinuousClock.now
        lock.withLock {
            if records.count >= capacity {
                records = records.filter { now - $0.value.at < ttl }
                if records.count >= capacity { records.removeAll() }
            }
            records[member.id] = (member, now)
        }
    }

    public func record(of id: MemberID) -> Member? {
        lock.withLock {
            guard let entry = records[id], ContinuousClock.now - entry.at < ttl else { return nil }
            return entry.member
        }
    }

    public func forget(_ id: MemberID) {
        lock.withLock { records[id] = nil }
    }
}
