import Metrics
import Prometheus

/// Every metric the worker daemon (and the web backend) reports, created
/// through one `MetricsFactory` so tests can pass their own. Names follow
/// Prometheus conventions (`_total` counters, `_seconds` durations).
///
/// Never member data in labels: labels are priorities, outcomes, shard ids.
public final class KindredMetrics: Sendable {
    public let factory: any MetricsFactory

    /// Jobs finished, by outcome: `done`, `removed` (a deleted member),
    /// `retry`, `dead`, `postponed` (its shard was unavailable).
    public func jobs(_ outcome: String) -> Metrics.Counter {
        Metrics.Counter(label: "kindred_jobs_total", dimensions: [("outcome", outcome)], factory: factory)
    }
    /// Time a job took from fetch to completion.
    public let jobDuration: Metrics.Timer
    /// Time a job spends in each phase: `read` (the member from MySQL),
    /// `refresh` (the snapshot brought up to the job's start), `scan`
    /// (scoring against every candidate), `assign` (the shard), `write`
    /// (the set), `record` (the generation in MySQL), `catch-up` (members
    /// that changed meanwhile placed into the new set), `publish-scan` (the
    /// sets a change concerns), `publish` (placements and settlement),
    /// `remove` (a deletion).
    public func jobPhase(_ phase: String) -> Metrics.Timer {
        Metrics.Timer(label: "kindred_job_phase_seconds", dimensions: [("phase", phase)], preferredDisplayUnit: .seconds, factory: factory)
    }
    /// Time from a member's enqueue to its set being stored.
    public let enqueueToStored: Metrics.Timer
    /// Waiting jobs per priority.
    public func queueDepth(_ priority: String) -> Metrics.Gauge {
        Metrics.Gauge(label: "kindred_queue_depth", dimensions: [("priority", priority)], factory: factory)
    }
    public let queueDelayed: Metrics.Gauge
    public let queueDead: Metrics.Gauge
    public let queueProcessing: Metrics.Gauge
    /// Age of the oldest job held by any worker.
    public let processingAge: Metrics.Gauge
    public let scoresWritten: Metrics.Counter
    /// Placements into other members' sets by outcome: `entered`,
    /// `updated`, `removed`, `unchanged`, `absent`, `no_set`, `stale`,
    /// `legacy` (publications and catch-ups).
    public func placements(_ outcome: String) -> Metrics.Counter {
        Metrics.Counter(label: "kindred_placements_total", dimensions: [("outcome", outcome)], factory: factory)
    }
    /// Sets a publication skipped without a round trip, by reason:
    /// `covered` (the set's scan saw the change), `unchanged` (same pair
    /// under every record), `below_floor`.
    public func publicationSkips(_ reason: String) -> Metrics.Counter {
        Metrics.Counter(label: "kindred_publication_skips_total", dimensions: [("reason", reason)], factory: factory)
    }
    /// Sets the audit's self-check recomputed and found different from the
    /// snapshot's ranking (each is rebuilt).
    public let auditMismatches: Metrics.Counter
    /// Sets the audit sampled and recomputed.
    public let auditChecked: Metrics.Counter
    public func shardErrors(_ shard: UInt32) -> Metrics.Counter {
        Metrics.Counter(label: "kindred_shard_errors_total", dimensions: [("shard", String(shard))], factory: factory)
    }
    /// 0 closed, 1 half-open, 2 open.
    public func breakerState(_ shard: UInt32) -> Metrics.Gauge {
        Metrics.Gauge(label: "kindred_shard_breaker_state", dimensions: [("shard", String(shard))], factory: factory)
    }
    /// Workers found on one job past the deadline (each episode once).
    public let workerStalls: Metrics.Counter
    public let snapshotAge: Metrics.Gauge
    public let snapshotMembers: Metrics.Gauge
    /// Members a scan scored, per job (candidates after the filters).
    public let candidatesScored: Recorder

    public init(factory: any MetricsFactory) {
        self.factory = factory
        jobDuration = Metrics.Timer(label: "kindred_job_duration_seconds", preferredDisplayUnit: .seconds, factory: factory)
        enqueueToStored = Metrics.Timer(
            label: "kindred_enqueue_to_stored_seconds", preferredDisplayUnit: .seconds, factory: factory)
        queueDelayed = Metrics.Gauge(label: "kindred_queue_delayed", factory: factory)
        queueDead = Metrics.Gauge(label: "kindred_queue_dead", factory: factory)
        queueProcessing = Metrics.Gauge(label: "kindred_queue_processing", factory: factory)
        processingAge = Metrics.Gauge(label: "kindred_queue_processing_age_seconds", factory: factory)
        scoresWritten = Metrics.Counter(label: "kindred_scores_written_total", factory: factory)
        workerStalls = Metrics.Counter(label: "kindred_worker_stalls_total", factory: factory)
        snapshotAge = Metrics.Gauge(label: "kindred_snapshot_age_seconds", factory: factory)
        snapshotMembers = Metrics.Gauge(label: "kindred_snapshot_members", factory: factory)
        candidatesScored = Recorder(label: "kindred_candidates_scored", aggregate: true, factory: factory)
        auditMismatches = Metrics.Counter(label: "kindred_set_audit_mismatches_total", factory: factory)
        auditChecked = Metrics.Counter(label: "kindred_set_audit_checked_total", factory: factory)
    }

    /// Metrics into a Prometheus registry, with buckets that suit job
    /// latencies (1 ms ... 30 s).
    public static func prometheus(registry: PrometheusCollectorRegistry) -> KindredMetrics {
        var factory = PrometheusMetricsFactory(registry: registry)
        let latency: [Duration] = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(50),
            .milliseconds(100), .milliseconds(200), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
            .seconds(30),
        ]
        factory.defaultDurationHistogramBuckets = latency
        factory.defaultValueHistogramBuckets = [100, 1_000, 10_000, 50_000, 100_000, 200_000, 500_000]
        return KindredMetrics(factory: factory)
    }
}
