import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle

/// The Prometheus text endpoint of a process: `GET /metrics` (and
/// `GET /healthz` answering `ok`), bound to 127.0.0.1 unless configured
/// otherwise. A `Service` for the process's `ServiceGroup`.
public enum MetricsServer {
    public static func make(registry: PrometheusCollectorRegistry, host: String, port: Int, logger: Logger) -> any Service {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("/healthz") { _, _ in "ok" }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "kindred-worker"),
            logger: logger)
    }
}
