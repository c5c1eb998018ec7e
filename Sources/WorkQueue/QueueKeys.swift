/// The Redis keys of one queue. Everything lives under a namespace (default
/// `kq`) on one Redis instance: the queue is not spread over a cluster, so
/// scripts may touch a worker's processing list by name. On a Redis Cluster
/// the namespace is a hash tag (`{kq}:ready:0`, ``onCluster``): every key
/// lives in one slot, on one master.
///
/// - `NS:ready:0|1|2` lists of member ids per priority (LPUSH to enqueue,
///   RPOP to take, RPUSH to put a job back at the front);
/// - `NS:waiting` hash: member -> `priority:enqueuedAtMs` for every waiting
///   member: the truth about what waits. A list entry whose member is not in
///   it at that priority is stale (promoted, or already taken) and skipped;
/// - `NS:depth` hash: priority -> number of waiting members;
/// - `NS:processing:WORKER` list of `id|priority|enqueuedAt|startedAt|attempts`;
/// - `NS:workers` sorted set: worker -> last heartbeat (server ms);
/// - `NS:attempts` hash: member -> failed attempts;
/// - `NS:postponed` hash: member -> postponements in a row (its shard was
///   down; these are not attempts);
/// - `NS:delayed` sorted set: member -> when to run them again (a retry or a
///   postponement): the truth about what is delayed, at most one run per
///   member (entries `id|priority|enqueuedAt` left by older versions are
///   still taken when due);
/// - `NS:delayed:jobs` hash: member -> `priority:enqueuedAtMs` of their
///   delayed run;
/// - `NS:dead` hash: member -> `priority|attempts|diedAt|reason`;
/// - `NS:signal` list: one token per new job, so idle workers wake at once;
/// - `NS:reaper` a lock so one reaper runs at a time;
/// - `NS:deleting` sorted set: member -> when their deletion was accepted
///   (ms), so every reader filters them out while the reciprocal removals
///   are still being applied; `NS:blocking` sorted set: `low:high` member
///   pair -> when the block was accepted (ms), hidden from each other the
///   same way; `NS:deleting:version` counts the changes of both, so
///   readers refetch them only when they changed;
/// - `NS:stats:MINUTE` hash: counters the workers publish for that Unix
///   minute (jobs, failures, latency buckets, placements by outcome),
///   expiring after two hours: the dashboard's charts;
/// - `NS:stats:publishers` hash: publisher -> the number of its last batch
///   added, so a batch sent again is not counted twice;
///   `NS:stats:publishers:seen` sorted set: publisher -> when it last
///   published (ms); publishers silent for two hours are forgotten.
package struct QueueKeys: Sendable, Hashable {
    package let namespace: String

    package init(namespace: String = "kq") {
        precondition(!namespace.isEmpty && !namespace.contains(" "), "a queue namespace is one word")
        self.namespace = namespace
    }

    /// The same keys with the namespace as a hash tag (`{kq}`), so that they
    /// share one slot of a Redis Cluster; unchanged when it is one already.
    package var onCluster: QueueKeys {
        if let open = namespace.firstIndex(of: "{"), let close = namespace[open...].firstIndex(of: "}"),
            namespace.index(after: open) < close
        {
            return self
        }
        return QueueKeys(namespace: "{\(namespace)}")
    }

    func ready(_ priority: JobPriority) -> String { "\(namespace):ready:\(priority.rawValue)" }
    var readyLists: [String] { JobPriority.allCases.map(ready) }
    var waiting: String { "\(namespace):waiting" }
    var depth: String { "\(namespace):depth" }
    func processing(_ worker: String) -> String { "\(namespace):processing:\(worker)" }
    var workers: String { "\(namespace):workers" }
    var attempts: String { "\(namespace):attempts" }
    var delayed: String { "\(namespace):delayed" }
    var delayedJobs: String { "\(namespace):delayed:jobs" }
    /// The keys every script that puts a member in line starts with, in this
    /// order (see `QueueScripts.placement`).
    var placement: [String] { [waiting, depth] + readyLists + [signal, delayed, delayedJobs] }
    var postponed: String { "\(namespace):postponed" }
    var dead: String { "\(namespace):dead" }
    var signal: String { "\(namespace):signal" }
    var reaper: String { "\(namespace):reaper" }
    var deleting: String { "\(namespace):deleting" }
    var deletingVersion: String { "\(namespace):deleting:version" }
    var blocking: String { "\(namespace):blocking" }
    func throughput(minute: Int64) -> String { "\(namespace):stats:\(minute)" }
    var throughputPublishers: String { "\(namespace):stats:publishers" }
    var throughputPublishersSeen: String { "\(namespace):stats:publishers:seen" }
}
