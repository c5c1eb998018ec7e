import Foundation
import Hummingbird
import KindredCore
import KindredSupport
import Logging
import MemberStore
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle

/// Builds a web backend process's services: the HTTP server, the snapshot
/// refresher, the shard list follower and the metrics collector. The
/// `ServiceGroup` stops them in reverse, so the HTTP server stops first and
/// the backend's threads last.
package enum WebServer {
    package static func services(
        backend: WebBackend, host: String, port: Int, token: String, registry: PrometheusCollectorRegistry?,
        onServerRunning: (@Sendable (Int) async -> Void)? = nil
    ) -> [any Service] {
        let core = backend.core
        let router = WebRoutes.router(backend: backend, token: token, registry: registry)
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "kindred"),
            onServerRunning: { channel in
                await onServerRunning?(channel.localAddress?.port ?? port)
            },
            logger: core.logger)
        return [
            BackendThreads(backend: backend),
            Maintenance.metricsCollector(core),
            batchMetrics(backend),
            Maintenance.refresher(core),
            Maintenance.shardListReloader(core),
            application,
        ]
    }
}

extension WebServer {
    /// Publishes the batched read path's counts every metrics interval:
    /// `kindred_web_read_batches_total`, `kindred_web_read_batched_requests_total`
    /// (requests that went through it) and `kindred_web_read_batch_answers_total`
    /// (the ones it answered; the others took the full path), and
    /// `kindred_web_set_reads_total` by kind (`whole`, `delta`).
    static func batchMetrics(_ backend: WebBackend) -> ThreadsService {
        let core = backend.core
        let factory = core.metrics.factory
        let batches = Metrics.Counter(label: "kindred_web_read_batches_total", factory: factory)
        let requests = Metrics.Counter(label: "kindred_web_read_batched_requests_total", factory: factory)
        let answered = Metrics.Counter(label: "kindred_web_read_batch_answers_total", factory: factory)
        let wholeReads = Metrics.Counter(label: "kindred_web_set_reads_total", dimensions: [("kind", "whole")], factory: factory)
        let deltaReads = Metrics.Counter(label: "kindred_web_set_reads_total", dimensions: [("kind", "delta")], factory: factory)
        /// The counts last published.
        let published = Locked((value: (batches: 0, requests: 0, answered: 0), reads: (whole: 0, delta: 0)))
        let publish: @Sendable () -> Void = {
            published.withLock { published in
                let now = backend.batchedReads
                let last = published.value
                batches.increment(by: Int64(now.batches - last.batches))
                requests.increment(by: Int64(now.requests - last.requests))
                answered.increment(by: Int64(now.answered - last.answered))
                published.value = now
                let reads = backend.setReads
                wholeReads.increment(by: Int64(reads.whole - published.reads.whole))
                deltaReads.increment(by: Int64(reads.delta - published.reads.delta))
                published.reads = reads
            }
        }
        return periodicService(
            name: "web-metrics", interval: core.settings.metricsInterval, logger: core.logger, body: publish, onStop: publish)
    }
}

/// Owns the backend's threads: stops them when the group shuts down (after
/// the HTTP server, which stops first).
struct BackendThreads: Service {
    let backend: WebBackend

    func run() async throws {
        try? await gracefulShutdown()
        _ = try? await runOnThread(name: "web-shutdown") { [backend] in backend.shutdown() }
    }
}
