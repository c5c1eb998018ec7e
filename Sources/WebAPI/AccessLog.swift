import Foundation
import Hummingbird
import HummingbirdCore
import KindredSupport
import Logging

/// One log line per request: `request` with `method`, `route` (the route's
/// template, such as `/v1/members/{id}/matches`, never the raw path or
/// query: a query may hold the browse page's token), `status`,
/// `duration_ms` and `request_id`. At info, but the probe and scrape
/// routes (`/livez`, `/readyz`, `/healthz`, `/metrics`), which a load
/// balancer and Prometheus call every few seconds, at debug.
///
/// The request id is the request's `X-Request-ID` when it is 1 to 128
/// visible ASCII characters (`!` to `~`), else a new random one (32 hex
/// digits); either way the response carries it back in `X-Request-ID`,
/// errors included.
///
/// Outermost middleware: it sees the status the client gets, turning an
/// error into its response itself to set the header on it.
struct AccessLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    static var requestIDField: HTTPFields.Element.Name { HTTPFields.Element.Name("X-Request-ID")! }
    static var quietRoutes: Set<String> { ["/livez", "/readyz", "/healthz", "/metrics"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let id = Self.requestID(request.headers[Self.requestIDField])
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        } catch {
            // Not reached: ErrorMiddleware turns every error into an APIError.
            log(request, context, status: 500, started: started, id: id)
            throw error
        }
        response.headers[Self.requestIDField] = id
        log(request, context, status: Int(response.status.code), started: started, id: id)
        return response
    }

    private func log(_ request: Request, _ context: Context, status: Int, started: ContinuousClock.Instant, id: String) {
        let route = context.endpointPath ?? "unmatched"
        let level: Logger.Level = Self.quietRoutes.contains(route) ? .debug : .info
        logger.log(
            level: level, "request",
            metadata: [
                "method": "\(request.method.rawValue)", "route": "\(route)",
                // Numbers, not strings: the JSON log format writes integers
                // and finite doubles as JSON numbers (docs/observability.md).
                "status": .stringConvertible(status),
                "duration_ms": .stringConvertible(Self.milliseconds(ContinuousClock.now - started)), "request_id": "\(id)",
            ])
    }

    /// `given` when it is a usable request id, else a new one.
    static func requestID(_ given: String?) -> String {
        if let given, isValid(given) { return given }
        var generator = SystemRandomNumberGenerator()
        let (high, low) = (generator.next() as UInt64, generator.next() as UInt64)
        return hex(high) + hex(low)
    }

    /// 1 to 128 visible ASCII characters (no spaces, no control characters).
    static func isValid(_ id: String) -> Bool {
        let utf8 = id.utf8
        return !utf8.isEmpty && utf8.count <= 128 && utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// A duration in milliseconds, to the microsecond: at most three
    /// decimals (`12.345`, `12.3`, `0.0`), as the shortest description of
    /// the double nearest to the whole microseconds / 1000 has no more.
    static func milliseconds(_ duration: Duration) -> Double {
        let microseconds = duration.inMicroseconds
        return Double(microseconds) / 1000
    }
}
