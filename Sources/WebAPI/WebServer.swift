import Foundation
import Hummingbird
import Logging
import MemberStore
import NIOCore
import Pipeline
import Prometheus
import ServiceLifecycle

/// Builds a web backend process's services: the HTTP server, the snapshot
/// refresher, the shard list follower and the metrics collector. The
/// `ServiceGroup` stops them in reverse, so the HTTP server stops first and
/// the backend's threads last.
public enum WebServer {
    public static func services(
        backend: WebBackend, host: String, port: Int, token: String, registry: PrometheusCollectorRegistry?,
        watermark: SnapshotWatermark, onServerRunning: (@Sendable (Int) async -> Void)? = nil
    ) -> [any Service] {
        let context = backend.context
        let router = WebRoutes.router(backend: backend, token: token, registry: registry)
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "kindred"),
            onServerRunning: { channel in
                await onServerRunning?(channel.localAddress?.port ?? port)
            },
            logger: context.logger)
        return [
            BackendThreads(backend: backend),
            Maintenance.metricsCollector(context),
            Maintenance.refresher(context, since: watermark),
            Maintenance.shardListReloader(context),
            application,
        ]
    }
}

/// Owns the backend's threads: stops them when the group shuts down (after
/// the HTTP server, which stops first).
struct BackendThreads: Service {
    let backend: WebBackend

    func run() async throws {
        try? await gracefulShutdown()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let thread = Thread { [backend] in
                backend.shutdown()
                continuation.resume()
            }
            thread.start()
        }
    }
}
