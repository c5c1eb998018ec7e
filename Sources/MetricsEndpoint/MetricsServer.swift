import Foundation
import Hummingbird
import KindredSupport
import Logging
import Prometheus
import ServiceLifecycle

/// The worker's HTTP endpoint for operators, bound to 127.0.0.1 unless
/// configured otherwise. A `Service` for the process's `ServiceGroup`.
///
/// - `GET /metrics`: the Prometheus text (``MetricsExposition``).
/// - `GET /livez`: 200 while the process serves (it checks nothing else).
/// - `GET /readyz`: 200 when the worker can take and finish jobs (MySQL and
///   the queue answer), else 503; a JSON body with each dependency (the
///   `probe`'s, e.g. the worker's `WorkerProbe`, run on a thread of its own
///   since it blocks). Without a probe, 200.
/// - `GET /healthz`: `ok`, kept for the probes configured before `/livez`.
package enum MetricsServer {
    package static func make(
        registry: PrometheusCollectorRegistry, host: String, port: Int, logger: Logger, probe: (@Sendable () -> (ready: Bool, json: String))? = nil,
        onServerRunning: (@Sendable (Int) async -> Void)? = nil
    ) -> any Service {
        let exposition = MetricsExposition(registry: registry)
        let router = Router()
        router.get("/metrics") { _, _ -> Response in try await exposition.response() }
        router.get("/healthz") { _, _ in "ok" }
        router.get("/livez") { _, _ -> Response in json("{\"status\":\"ok\"}\n", status: .ok) }
        router.get("/readyz") { _, _ -> Response in
            guard let probe else { return json("{\"status\":\"ready\"}\n", status: .ok) }
            let report = try await runOnThread(name: "kindred-probe") { probe() }
            return json(report.json, status: report.ready ? .ok : .serviceUnavailable)
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "kindred-worker"),
            onServerRunning: { channel in await onServerRunning?(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    static func json(_ body: String, status: HTTPResponse.Status) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
