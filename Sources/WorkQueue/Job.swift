import Scoring

/// How urgent a job is. Workers always take every waiting interactive job
/// before any repair job, and every repair job before any backfill job.
package enum JobPriority: Int, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    /// Just registered, changed answers, logged in, or read while missing.
    case interactive = 0
    /// A shard lost data.
    case repair = 1
    /// Bulk rebuilds of dormant members.
    case backfill = 2

    package var description: String {
        switch self {
        case .interactive: "interactive"
        case .repair: "repair"
        case .backfill: "backfill"
        }
    }

    package init?(name: String) {
        guard let match = JobPriority.allCases.first(where: { $0.description == name }) else { return nil }
        self = match
    }

    package static func < (a: JobPriority, b: JobPriority) -> Bool { a.rawValue < b.rawValue }
}

/// A job a worker has taken: regenerate `member`'s set. It sits in the
/// worker's processing list until ``WorkQueue/complete(_:)`` or
/// ``WorkQueue/fail(_:reason:)``; if the worker stops heartbeating first, the
/// reaper puts it back.
package struct Job: Sendable, Hashable, CustomStringConvertible {
    package let member: MemberID
    package let priority: JobPriority
    /// When the member was first queued (server clock, Unix milliseconds).
    package let enqueuedAt: Int64
    /// When this worker took it (server clock, Unix milliseconds).
    package let startedAt: Int64
    /// Failed attempts before this one.
    package let attempts: Int
    /// The exact processing-list entry, to remove it.
    let entry: String

    package var description: String { "job(member \(member), \(priority), attempt \(attempts + 1))" }

    /// Parses `id|priority|enqueuedAt|startedAt|attempts`.
    init?(entry: String) {
        let parts = entry.split(separator: "|")
        guard parts.count == 5, let id = MemberID(parts[0]), id > 0, let p = Int(parts[1]),
            let priority = JobPriority(rawValue: p), let enqueued = Int64(parts[2]), let started = Int64(parts[3]),
            let attempts = Int(parts[4])
        else { return nil }
        member = id
        self.priority = priority
        enqueuedAt = enqueued
        startedAt = started
        self.attempts = attempts
        self.entry = entry
    }
}

/// A job that failed too often, kept with the reason until re-driven.
package struct DeadJob: Sendable, Hashable {
    package let member: MemberID
    package let priority: JobPriority
    package let attempts: Int
    /// When it died (Unix milliseconds).
    package let diedAt: Int64
    /// The last failure, as the worker described it (never member data).
    package let reason: String
}

/// What an enqueue did with the ids it was given: every id given counts in
/// exactly one of the four.
package struct EnqueueResult: Sendable, Hashable {
    /// Newly waiting.
    package var enqueued = 0
    /// Were waiting, or delayed for a retry, at a less urgent priority and
    /// now have the requested one (a delayed run keeps its time).
    package var promoted = 0
    /// Were already waiting at this priority or a more urgent one.
    package var alreadyWaiting = 0
    /// Were already delayed (a retry or a postponement, for instance while
    /// their shard is down) at this priority or a more urgent one: nothing
    /// new was queued, the delayed run covers the request.
    package var alreadyDelayed = 0
    package init() {}
}

/// What happened to a failed job.
package enum FailureOutcome: Sendable, Hashable {
    /// It will be offered again at this time (Unix milliseconds).
    case retry(at: Int64, attempt: Int)
    /// It failed its last allowed attempt and is in the dead-letter list.
    case dead(attempts: Int)
    /// It was no longer in this worker's processing list (reaped meanwhile).
    case notHeld
}

/// What ``WorkQueue/postpone(_:worker:random:on:)`` did with a job.
package enum PostponeOutcome: Sendable, Hashable {
    /// It will be offered again at this time (Unix milliseconds); postponed
    /// this many times in a row.
    case postponed(at: Int64, times: Int)
    /// It was no longer in this worker's processing list (reaped meanwhile).
    case notHeld
}

/// The queue's counters, for metrics and `kindred queue stats`.
package struct QueueStats: Sendable, Hashable {
    /// Waiting jobs per priority.
    package var waiting: [JobPriority: Int] = [:]
    /// Members whose run is delayed (a retry or a postponement, with backoff).
    package var delayed = 0
    /// Jobs held by workers.
    package var processing = 0
    /// Age of the oldest job held by a worker (milliseconds), 0 when none.
    package var oldestProcessingAge: Int64 = 0
    package var dead = 0
    /// Workers that heartbeat.
    package var workers = 0
    package init() {}
}
