import Foundation
import KindredLogging
import MemberStore
import WorkQueue

/// The `--json` documents of the operator commands (`status`, `queue stats`,
/// `queue dead`). Field names are stable: scripts rely on them, and
/// docs/cli.md lists them. New fields may be added; none is renamed.
enum CommandJSON {
    /// One JSON object on one line, keys sorted.
    static func line(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// `queue stats --json`, and the `queue` object of `status --json`.
    struct Queue: Encodable {
        /// Waiting jobs per priority name: `interactive`, `repair`, `backfill`.
        var waiting: [String: Int]
        var delayed: Int
        var processing: Int
        var oldestProcessingMs: Int64
        var dead: Int
        var workers: Int

        enum CodingKeys: String, CodingKey {
            case waiting, delayed, processing, dead, workers
            case oldestProcessingMs = "oldest_processing_ms"
        }

        init(_ stats: QueueStats) {
            waiting = Dictionary(uniqueKeysWithValues: JobPriority.allCases.map { ($0.description, stats.waiting[$0] ?? 0) })
            delayed = stats.delayed
            processing = stats.processing
            oldestProcessingMs = stats.oldestProcessingAge
            dead = stats.dead
            workers = stats.workers
        }
    }

    /// `status --json`.
    struct Status: Encodable {
        struct Members: Encodable { var live: Int; var deleted: Int }
        struct Sets: Encodable { var current: Int; var stale: Int; var missing: Int }
        var members: Members
        var sets: Sets
        var queue: Queue

        init(members: MemberCounts, generations: GenerationCounts, queue: QueueStats) {
            self.members = Members(live: members.live, deleted: members.deleted)
            sets = Sets(current: generations.generated - generations.stale, stale: generations.stale, missing: generations.missing)
            self.queue = Queue(queue)
        }
    }

    /// One entry of `queue dead --json`'s `dead` array.
    struct DeadJobEntry: Encodable {
        var member: UInt32
        var priority: String
        var attempts: Int
        /// RFC 3339 UTC with milliseconds.
        var diedAt: String
        var reason: String

        enum CodingKeys: String, CodingKey {
            case member, priority, attempts, reason
            case diedAt = "died_at"
        }

        init(_ job: DeadJob) {
            member = job.member
            priority = job.priority.description
            attempts = job.attempts
            diedAt = LogRecord.WallTime(unixMilliseconds: job.diedAt).rfc3339
            reason = job.reason
        }
    }

    /// `queue dead --json`.
    struct Dead: Encodable { var dead: [DeadJobEntry] }

    /// `queue dead --delete --json`.
    struct Deleted: Encodable { var deleted: Int }
}
