import CoreMetrics
import KindredSupport
import Metrics
import WorkQueue

/// The programs that export metrics: each exports only its own families
/// (``KindredMetrics/families``), so a dashboard never shows a worker
/// family stuck at 0 on a web backend, or the reverse.
package enum MetricsProgram: String, Sendable, CaseIterable {
    /// `kindred worker`.
    case worker
    /// `kindred serve`.
    case serve
    /// Anything else (the backfill's phase totals, tests): nothing is
    /// registered ahead of its first use.
    case other
}

/// Every metric the worker daemon and the web backend report, created
/// through one `MetricsFactory` so tests can pass their own. Names follow
/// Prometheus conventions (`_total` counters, `_seconds` durations).
///
/// Never member data in labels: labels are priorities, outcomes, shard ids.
///
/// A family is registered when first used, except that ``init(factory:program:)``
/// registers the families of its program ahead (at 0, with their known
/// label values), so that `rate()` and alerts see them from the start. A
/// family another program uses now and then (the web backend's on-read
/// regenerations time their phases) appears there on its first use.
package final class KindredMetrics: Sendable {
    package let factory: any MetricsFactory
    package let program: MetricsProgram

    /// Jobs finished, by outcome: `done`, `removed` (a deleted member),
    /// `retry`, `dead`, `postponed` (its shard was unavailable).
    package func jobs(_ outcome: String) -> Metrics.Counter {
        Metrics.Counter(label: "kindred_jobs_total", dimensions: [("outcome", outcome)], factory: factory)
    }
    package static let jobOutcomes = ["done", "removed", "retry", "dead", "postponed"]
    /// Time a job took from fetch to completion.
    package var jobDuration: Metrics.Timer {
        Metrics.Timer(label: "kindred_job_duration_seconds", preferredDisplayUnit: .seconds, factory: factory)
    }
    /// Time a job spends in each phase: `read` (the member from MySQL),
    /// `refresh` (the snapshot brought up to the job's start), `scan`
    /// (scoring against every candidate), `assign` (the shard), `write`
    /// (the set), `record` (the generation in MySQL), `catch-up` (members
    /// that changed meanwhile placed into the new set), `publish-scan` (the
    /// sets a change concerns), `publish` (placements and settlement),
    /// `remove` (a deletion).
    package func jobPhase(_ phase: String) -> Metrics.Timer {
        Metrics.Timer(label: "kindred_job_phase_seconds", dimensions: [("phase", phase)], preferredDisplayUnit: .seconds, factory: factory)
    }
    package static let jobPhases = ["read", "refresh", "scan", "assign", "write", "record", "catch-up", "publish-scan", "publish", "remove"]
    /// Time from a member's enqueue to its set being stored.
    package var enqueueToStored: Metrics.Timer {
        Metrics.Timer(label: "kindred_enqueue_to_stored_seconds", preferredDisplayUnit: .seconds, factory: factory)
    }
    /// Waiting jobs per priority.
    package func queueDepth(_ priority: String) -> Metrics.Gauge {
        Metrics.Gauge(label: "kindred_queue_depth", dimensions: [("priority", priority)], factory: factory)
    }
    package var queueDelayed: Metrics.Gauge { Metrics.Gauge(label: "kindred_queue_delayed", factory: factory) }
    package var queueDead: Metrics.Gauge { Metrics.Gauge(label: "kindred_queue_dead", factory: factory) }
    package var queueProcessing: Metrics.Gauge { Metrics.Gauge(label: "kindred_queue_processing", factory: factory) }
    /// Age of the oldest job held by any worker.
    package var processingAge: Metrics.Gauge { Metrics.Gauge(label: "kindred_queue_processing_age_seconds", factory: factory) }
    package var scoresWritten: Metrics.Counter { Metrics.Counter(label: "kindred_scores_written_total", factory: factory) }
    /// Placements into other members' sets by outcome: `entered`,
    /// `updated`, `removed`, `unchanged`, `absent`, `no_set`, `stale`,
    /// `legacy` (publications and catch-ups).
    package func placements(_ outcome: String) -> Metrics.Counter {
        Metrics.Counter(label: "kindred_placements_total", dimensions: [("outcome", outcome)], factory: factory)
    }
    package static let placementOutcomes = ["entered", "updated", "removed", "unchanged", "absent", "no_set", "stale", "legacy"]
    /// Sets a publication skipped without a round trip, by reason:
    /// `covered` (the set's scan saw the change), `unchanged` (same pair
    /// under every record), `below_floor`.
    package func publicationSkips(_ reason: String) -> Metrics.Counter {
        Metrics.Counter(label: "kindred_publication_skips_total", dimensions: [("reason", reason)], factory: factory)
    }
    package static let publicationSkipReasons = ["covered", "unchanged", "below_floor"]
    /// Sets the audit's self-check recomputed and found different from the
    /// snapshot's ranking (each is rebuilt).
    package var auditMismatches: Metrics.Counter { Metrics.Counter(label: "kindred_set_audit_mismatches_total", factory: factory) }
    /// Sets the audit sampled and recomputed.
    package var auditChecked: Metrics.Counter { Metrics.Counter(label: "kindred_set_audit_checked_total", factory: factory) }
    package func shardErrors(_ shard: UInt32) -> Metrics.Counter {
        Metrics.Counter(label: "kindred_shard_errors_total", dimensions: [("shard", String(shard))], factory: factory)
    }
    /// 0 closed, 1 half-open, 2 open.
    package func breakerState(_ shard: UInt32) -> Metrics.Gauge {
        Metrics.Gauge(label: "kindred_shard_breaker_state", dimensions: [("shard", String(shard))], factory: factory)
    }
    /// 1 when the shard answered this process's last check, else 0.
    package func shardUp(_ shard: UInt32) -> Metrics.Gauge {
        Metrics.Gauge(label: "kindred_shard_up", dimensions: [("shard", String(shard))], factory: factory)
    }
    /// Removes `shard`'s gauges (`kindred_shard_up`,
    /// `kindred_shard_breaker_state`): a shard gone from the shard list must
    /// not go on reporting its last state (a shard removed while down would
    /// keep "Shard down" firing). Its error counter stays: it only counts.
    package func forgetShard(_ shard: UInt32) {
        shardUp(shard).destroy()
        breakerState(shard).destroy()
    }
    /// Workers found on one job past the deadline (each episode once).
    package var workerStalls: Metrics.Counter { Metrics.Counter(label: "kindred_worker_stalls_total", factory: factory) }
    package var snapshotAge: Metrics.Gauge { Metrics.Gauge(label: "kindred_snapshot_age_seconds", factory: factory) }
    package var snapshotMembers: Metrics.Gauge { Metrics.Gauge(label: "kindred_snapshot_members", factory: factory) }
    /// Members a scan scored, per job (candidates after the filters).
    package var candidatesScored: Recorder { Recorder(label: "kindred_candidates_scored", aggregate: true, factory: factory) }

    /// Metrics through `factory`; the families of `program` are registered
    /// at once (see the type's documentation).
    package init(factory: any MetricsFactory, program: MetricsProgram = .other) {
        self.factory = factory
        self.program = program
        switch program {
        case .worker:
            for outcome in Self.jobOutcomes { _ = jobs(outcome) }
            for phase in Self.jobPhases { _ = jobPhase(phase) }
            for outcome in Self.placementOutcomes { _ = placements(outcome) }
            for reason in Self.publicationSkipReasons { _ = publicationSkips(reason) }
            for priority in JobPriority.allCases { _ = queueDepth(priority.description) }
            _ = (jobDuration, enqueueToStored, queueDelayed, queueDead, queueProcessing, processingAge)
            _ = (scoresWritten, workerStalls, candidatesScored, auditMismatches, auditChecked)
            _ = (snapshotAge, snapshotMembers)
        case .serve:
            _ = (snapshotAge, snapshotMembers)
        case .other:
            break
        }
    }


    /// The Swift compiler this build was made with (major.minor).
    package static let swiftVersion: String = {
        #if compiler(>=6.5)
        return "6.5+"
        #elseif compiler(>=6.4)
        return "6.4"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #else
        return "6.0"
        #endif
    }()

    /// A family: its help text and the programs that export it (`worker`,
    /// `serve`; the process families are every program's).
    package struct Family: Sendable {
        package var help: String
        package var programs: Set<MetricsProgram>
    }

    /// Every `kindred_*` family either program exports, with its help text
    /// (the `# HELP` line) and the programs that may export it (three worker
    /// families appear in serve when an on-read regeneration uses them). A metric made
    /// through ``HelpfulPrometheusFactory`` under a name missing here has no
    /// help, which a debug build stops at and the metrics tests catch.
    /// docs/observability.md explains each one.
    package static let families: [String: Family] = [
        "kindred_build_info": Family(
            help: "Always 1: the Kindred version, the Swift compiler that built it and the program, as labels.",
            programs: [.worker, .serve]),
        "kindred_jobs_total": Family(
            help: "Jobs finished, by outcome: done, removed (a deleted member), retry, dead (given up), postponed (its shard was unavailable).",
            programs: [.worker]),
        "kindred_job_duration_seconds": Family(help: "Time a job took from fetch to completion.", programs: [.worker]),
        "kindred_job_phase_seconds": Family(
            help: "Time a set's generation spent in each phase (read, refresh, scan, assign, write, record, catch-up, publish-scan, publish, remove); in serve, its on-read regenerations.",
            programs: [.worker, .serve]),
        "kindred_enqueue_to_stored_seconds": Family(help: "Time from a member's enqueue to their set being stored.", programs: [.worker]),
        "kindred_queue_depth": Family(help: "Jobs waiting in the queue, by priority.", programs: [.worker]),
        "kindred_queue_delayed": Family(help: "Jobs waiting for a retry or postponement delay to pass.", programs: [.worker]),
        "kindred_queue_dead": Family(help: "Jobs in the dead letters (given up; see kindred queue dead).", programs: [.worker]),
        "kindred_queue_processing": Family(help: "Jobs held by workers of any process.", programs: [.worker]),
        "kindred_queue_processing_age_seconds": Family(help: "Age of the oldest job held by any worker.", programs: [.worker]),
        "kindred_scores_written_total": Family(
            help: "Scores written into members' own sets (in serve, by on-read regenerations).", programs: [.worker, .serve]),
        "kindred_placements_total": Family(
            help: "Placements into other members' sets, by outcome: entered, updated, removed, unchanged, absent, no_set, stale, legacy (in serve, an on-read regeneration's catch-up).",
            programs: [.worker, .serve]),
        "kindred_publication_skips_total": Family(
            help: "Sets a publication skipped without a round trip, by reason: covered, unchanged, below_floor.", programs: [.worker]),
        "kindred_set_audit_checked_total": Family(help: "Sets the audit sampled and recomputed.", programs: [.worker]),
        "kindred_set_audit_mismatches_total": Family(
            help: "Sets the audit recomputed and found different from the snapshot's ranking (each is rebuilt).", programs: [.worker]),
        "kindred_worker_stalls_total": Family(help: "Workers found on one job past the deadline (each episode once).", programs: [.worker]),
        "kindred_candidates_scored": Family(help: "Members a job's scan scored (candidates after the filters).", programs: [.worker]),
        "kindred_shard_errors_total": Family(help: "Failed round trips to a shard, by shard id.", programs: [.worker, .serve]),
        "kindred_shard_breaker_state": Family(
            help: "A shard's circuit breaker in this process: 0 closed, 1 half-open, 2 open.", programs: [.worker, .serve]),
        "kindred_shard_up": Family(help: "1 when the shard answered this process's last check, else 0.", programs: [.worker, .serve]),
        "kindred_snapshot_age_seconds": Family(
            help: "Time since the population snapshot last followed MySQL.", programs: [.worker, .serve]),
        "kindred_snapshot_members": Family(help: "Members in the population snapshot.", programs: [.worker, .serve]),
        "kindred_http_requests_total": Family(
            help: "HTTP requests answered, by route template (NotFound for a path no route has), method and status.",
            programs: [.serve]),
        "kindred_http_request_seconds": Family(help: "Time to answer an HTTP request, by route template and method.", programs: [.serve]),
        "kindred_web_read_batches_total": Family(help: "Batches the batched read path served.", programs: [.serve]),
        "kindred_web_read_batched_requests_total": Family(help: "Match-page requests that went through the batched read path.", programs: [.serve]),
        "kindred_web_read_batch_answers_total": Family(
            help: "Match-page requests the batched read path answered (the others took the full path).", programs: [.serve]),
        "kindred_web_set_reads_total": Family(
            help: "Sets read from their shards for pages, by kind: whole (every entry read and ranked) or delta (a cached copy brought up to date from the set's change log).",
            programs: [.serve]),
    ]

    /// The help text of `name`; empty (no `# HELP` line) for a name
    /// ``families`` does not list.
    package static func help(_ name: String) -> String {
        assert(families[name] != nil, "metric family \(name) has no help text: add it to KindredMetrics.families")
        return families[name]?.help ?? ""
    }
}
