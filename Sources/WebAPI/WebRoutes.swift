import Foundation
import Hummingbird
import HummingbirdCore
import KindredCore
import KindredSupport
import Logging
import MemberFormat
import Metrics
import MetricsEndpoint
import Prometheus
import Scoring
import Synchronization

/// The HTTP surface of the web backend: every route, the bearer-token check
/// on `/v1`, JSON errors everywhere.
package enum WebRoutes {
    package typealias Context = BasicRequestContext

    /// Builds the router. `registry` serves `/metrics` (nil: 404), with the
    /// `process_*` families. `accessLog` takes one line per request
    /// (``AccessLogMiddleware``; default: the backend's logger).
    ///
    /// HEAD is answered for every GET route (the GET's headers, no body);
    /// OPTIONS on any route's path is 204 with `Allow`; another method on a
    /// route's path is 405 with `Allow`; a path no route has is 404.
    package static func router(
        backend: WebBackend, token: String, registry: PrometheusCollectorRegistry?, accessLog: Logger? = nil
    ) -> Router<Context> {
        let router = Router(context: Context.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: AccessLogMiddleware(logger: accessLog ?? backend.core.logger))
        router.add(middleware: ErrorMiddleware(logger: backend.core.logger))
        router.add(middleware: RequestMetricsMiddleware(factory: backend.core.metrics.factory, throughput: backend.webThroughput))

        let v1 = router.group("v1").add(middleware: BearerTokenMiddleware(token: token))
        v1.get("members/{id}/matches") { request, context -> Response in
            let id = try memberID(context, "id")
            let query = request.uri.queryParameters  // parsed once
            let offset = try integer(query, "offset", default: 0, range: 0...1_000_000)
            let limit = try integer(query, "limit", default: 50, range: 1...backend.settings.maxPageSize)
            let page = try await backend.matches(id, offset: offset, limit: limit)
            return matchesJSON(page).response()
        }
        v1.get("members/{id}/score/{other}") { _, context -> Response in
            let id = try memberID(context, "id")
            let other = try memberID(context, "other")
            let result = try await backend.pairScore(id, other)
            var json = JSONOutput()
            json.raw("{\"member\":")
            json.int(result.member)
            json.raw(",\"other\":")
            json.int(result.other)
            switch result.outcome {
            case .scored(let tenths, let sums):
                json.raw(",\"score\":")
                json.score(tenths)
                json.raw(",\"common\":")
                json.int(sums.common)
            case .excluded(let rule):
                json.raw(",\"score\":null,\"excluded\":")
                json.string(rule.rawValue)
            }
            json.raw("}\n")
            return json.response()
        }
        v1.put("members/{id}") { request, context -> Response in
            let id = try memberID(context, "id")
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: backend.settings.maxBodyBytes)
            } catch {
                throw APIError(.contentTooLarge, "too_large", "a member document is at most \(backend.settings.maxBodyBytes) bytes")
            }
            // The body's own bytes go to the parser, which checks their
            // UTF-8 (a String would have replaced bad bytes) and skips the
            // whitespace around the object.
            let document = Array(body.readableBytesView)
            let newline = UInt8(ascii: "\n")
            guard !document.contains(newline) || document.split(separator: newline).count == 1 else {
                throw APIError.invalidMember("the body must be one member in the import line format")
            }
            let queued = try await backend.upsert(id, document: document)
            var json = JSONOutput()
            json.raw("{\"member\":")
            json.int(id)
            json.raw(",\"queued\":")
            json.bool(queued)
            json.raw("}\n")
            return json.response()
        }
        v1.post("members/{id}/login") { _, context -> Response in
            let id = try memberID(context, "id")
            let outcome = try await backend.login(id)
            var json = JSONOutput()
            json.raw("{\"member\":")
            json.int(id)
            json.raw(",\"set\":")
            json.string(outcome.rawValue)
            json.raw("}\n")
            return json.response()
        }
        v1.delete("members/{id}") { _, context -> Response in
            let id = try memberID(context, "id")
            try await backend.delete(id)
            var json = JSONOutput()
            json.raw("{\"member\":")
            json.int(id)
            json.raw(",\"deleted\":true}\n")
            return json.response()
        }

        // Probes (docs/observability.md): /livez checks nothing, /readyz and
        // /healthz check every dependency; only not ready is a 503.
        router.get("livez") { _, _ -> Response in
            var json = JSONOutput()
            json.raw("{\"status\":\"ok\"}\n")
            return json.response()
        }
        router.get("readyz") { _, _ -> Response in
            let report = await backend.health()
            var json = JSONOutput()
            json.raw("{\"status\":")
            json.string(report.ready ? "ready" : "not_ready")
            json.raw(",\"reasons\":[")
            for (index, reason) in report.notReadyReasons.enumerated() {
                if index > 0 { json.raw(",") }
                json.string(reason)
            }
            json.raw("]}\n")
            return json.response(status: report.ready ? .ok : .serviceUnavailable)
        }
        router.get("healthz") { _, _ -> Response in
            let report = await backend.health()
            var json = JSONOutput()
            json.raw("{\"status\":")
            json.string(report.status)
            json.raw(",\"ready\":")
            json.bool(report.ready)
            json.raw(",\"mysql\":")
            json.string(report.mysql)
            json.raw(",\"queue\":")
            json.string(report.queue)
            json.raw(",\"shards\":{")
            for (index, shard) in report.shards.enumerated() {
                if index > 0 { json.raw(",") }
                json.string(String(shard.id))
                json.raw(":")
                json.string(shard.state)
            }
            json.raw("},\"directory_cached\":")
            json.int(report.directoryCached)
            json.raw(",\"snapshot\":{\"members\":")
            json.int(report.snapshotMembers)
            json.raw(",\"age_seconds\":")
            json.int(Int(report.snapshotAgeSeconds))
            json.raw("}}\n")
            return json.response(status: report.ready ? .ok : .serviceUnavailable)
        }
        let exposition = registry.map(MetricsExposition.init(registry:))
        router.get("metrics") { _, _ -> Response in
            guard let exposition else { throw APIError(.notFound, "not_found", "metrics are not enabled") }
            return try await exposition.response()
        }
        router.get("openapi.yaml") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "application/yaml; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
        router.get("browse/{id}") { request, context -> Response in
            try await BrowsePage.respond(request, context, backend: backend, token: token)
        }
        AdminRoutes.register(on: router, backend: backend, token: token)
        // Last: it wraps only the not-found responder (see MethodNotAllowedMiddleware).
        let table = RouteMethods(router.routes.map { (path: $0.path.description, method: $0.method) }, head: true)
        router.add(middleware: MethodNotAllowedMiddleware(table: table))
        return router
    }

    /// `{"member", "total", "offset", "limit", "generated_at", "regenerated", "matches": [{"id", "score"}]}`.
    static func matchesJSON(_ page: MatchesPage) -> JSONOutput {
        var json = JSONOutput(capacity: 160 + page.matches.count * 28)
        json.raw("{\"member\":")
        json.int(page.member)
        json.raw(",\"total\":")
        json.int(page.total)
        json.raw(",\"offset\":")
        json.int(page.offset)
        json.raw(",\"limit\":")
        json.int(page.limit)
        json.raw(",\"generated_at\":")
        json.string(rfc3339(page.generatedAt))
        json.raw(",\"regenerated\":")
        json.bool(page.regenerated)
        json.raw(",\"matches\":[")
        json.matches(page.matches)
        json.raw("]}\n")
        return json
    }

    /// Unix seconds as `2026-11-22T10:00:00Z` (the import format's timestamps).
    static func rfc3339(_ seconds: Int64) -> String { Timestamp.format(seconds) }

    /// A member id path parameter: decimal digits only, 1 ... 2^32 - 1.
    static func memberID(_ context: Context, _ name: String) throws(APIError) -> MemberID {
        let text = context.parameters.get(name) ?? ""
        guard let id = parseMemberID(text) else {
            throw APIError.badRequest("\(name) must be a member id (an integer from 1 to 4294967295), not \"\(text.prefix(32))\"")
        }
        return id
    }

    package static func parseMemberID(_ text: some StringProtocol) -> MemberID? {
        guard !text.isEmpty, text.count <= 10, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let value = UInt64(text), value >= 1, value <= UInt64(UInt32.max)
        else { return nil }
        return MemberID(value)
    }

    /// An optional integer query parameter within `range`.
    package static func integer(_ query: FlatDictionary<Substring, Substring>, _ name: String, default value: Int, range: ClosedRange<Int>) throws(APIError) -> Int {
        let values = query.getAll(name)
        guard let text = values.first else { return value }
        guard values.count == 1 else { throw APIError.badRequest("\(name) is given more than once") }
        guard text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let number = Int(text), range.contains(number) else {
            throw APIError.badRequest("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), not \"\(text.prefix(32))\"")
        }
        return number
    }
}

/// Requires `Authorization: Bearer TOKEN`. The comparison takes the same
/// time wherever the first difference is.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    init(token: String) { self.token = Array(token.utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            Self.equal(Array(header.utf8.dropFirst(7)), token)
        else { throw APIError.unauthorized }
        return try await next(request, context)
    }

    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0 && !b.isEmpty
    }
}

/// Every error as `{"error": {"code", "message"}}`: the API's own as they
/// are, the framework's (no such route, wrong method) with their status,
/// anything else as a 500 whose details go to the log, not the client.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            switch error.status {
            case .notFound: throw APIError(.notFound, "not_found", "no such route: \(request.method) \(request.uri.path)")
            case .methodNotAllowed: throw APIError(.methodNotAllowed, "method_not_allowed", "\(request.method) is not allowed on \(request.uri.path)")
            default: throw APIError(error.status, "http_error", error.body ?? error.status.reasonPhrase)
            }
        } catch {
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            throw APIError.internalError("the request failed; see the server log")
        }
    }
}

/// Requests per route and status, and their latency.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: RequestMetrics
    let throughput: WebThroughput?

    init(factory: any MetricsFactory, throughput: WebThroughput? = nil) {
        metrics = RequestMetrics(factory: factory)
        self.throughput = throughput
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var status = 500  // any other error: ErrorMiddleware answers it with a 500
        defer {
            let elapsed = ContinuousClock.now - started
            throughput?.record(status: status)
            metrics.record(
                route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: status,
                nanoseconds: elapsed.inNanoseconds)
        }
        do {
            let response = try await next(request, context)
            status = response.status.code
            return response
        } catch let error as any HTTPResponseError {
            // The API's errors and the framework's (the router's 404 for a path no route has).
            status = error.status.code
            throw error
        }
    }
}

/// The request counter and timer of each route, method and status, made
/// once (the routes are the router's templates and the statuses few, so
/// this stays small) instead of being looked up in the registry per request.
final class RequestMetrics: Sendable {
    private struct CounterKey: Hashable {
        var route: String
        var method: String
        var status: Int
    }
    private struct TimerKey: Hashable {
        var route: String
        var method: String
    }
    private let factory: any MetricsFactory
    /// The handles made so far (metric handles are thread-safe).
    private let state = Mutex((counters: [CounterKey: Metrics.Counter](), timers: [TimerKey: Metrics.Timer]()))

    init(factory: any MetricsFactory) { self.factory = factory }

    func record(route: String, method: String, status: Int, nanoseconds: Int64) {
        let (counter, timer) = state.withLock { state -> (Metrics.Counter, Metrics.Timer) in
            let counterKey = CounterKey(route: route, method: method, status: status)
            let timerKey = TimerKey(route: route, method: method)
            let counter =
                state.counters[counterKey]
                ?? Metrics.Counter(
                    label: "kindred_http_requests_total",
                    dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory)
            state.counters[counterKey] = counter
            let timer =
                state.timers[timerKey]
                ?? Metrics.Timer(
                    label: "kindred_http_request_seconds", dimensions: [("route", route), ("method", method)],
                    preferredDisplayUnit: .seconds, factory: factory)
            state.timers[timerKey] = timer
            return (counter, timer)
        }
        counter.increment()
        timer.recordNanoseconds(nanoseconds)
    }
}
