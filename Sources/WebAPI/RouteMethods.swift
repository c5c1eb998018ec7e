import Hummingbird

/// The methods each of the router's paths answers, so that a request the
/// router could not route is told apart: a path no route has is 404, a
/// known path with a method it does not answer is 405 with `Allow`.
///
/// Paths match as Hummingbird's trie matches them: segments split on `/`
/// (empty ones skipped), a `{name}` template segment matching any one
/// segment, literal segments compared exactly. The table is small (one
/// entry per route path) and only consulted for requests the router did not
/// route, so a linear scan is enough.
struct RouteMethods: Sendable {
    /// One route path: its template (`/v1/members/{id}`) and methods.
    struct Route: Sendable, Equatable {
        var template: String
        /// Literal segments; nil for a parameter.
        var segments: [String?]
        var methods: Set<HTTPRequest.Method>

        /// The `Allow` header: the methods in a fixed order, HEAD with GET
        /// when the router generates it, and OPTIONS (answered for every path).
        func allow(head: Bool) -> String {
            var all = methods
            if head && all.contains(.get) { all.insert(.head) }
            all.insert(.options)
            let known = RouteMethods.order.filter(all.contains).map(\.rawValue)
            let others = all.subtracting(RouteMethods.order).map(\.rawValue).sorted()
            return (known + others).joined(separator: ", ")
        }
    }

    static let order: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]

    let routes: [Route]
    /// Whether the router answers HEAD for every GET route (`.autoGenerateHeadEndpoints`).
    let head: Bool

    /// - Parameter routes: every route as (template path, method), as `Router.routes` lists them.
    init(_ routes: [(path: String, method: HTTPRequest.Method)], head: Bool) {
        var byPath: [String: Route] = [:]
        var paths: [String] = []
        for (path, method) in routes {
            if byPath[path] == nil {
                paths.append(path)
                let segments = path.split(separator: "/").map { segment -> String? in
                    segment.hasPrefix("{") && segment.hasSuffix("}") || segment.hasPrefix(":") ? nil : String(segment)
                }
                byPath[path] = Route(template: path, segments: segments, methods: [])
            }
            byPath[path]!.methods.insert(method)
        }
        self.routes = paths.map { byPath[$0]! }
        self.head = head
    }

    /// The route whose template `path` matches, if any.
    func route(for path: String) -> Route? {
        let parts = path.split(separator: "/")
        return routes.first { route in
            route.segments.count == parts.count
                && zip(route.segments, parts).allSatisfy { literal, part in literal.map { $0 == part } ?? true }
        }
    }
}

/// Answers what the router could not route: a known path asked with a
/// method it does not answer is 405 with `Allow` (the JSON error), OPTIONS
/// on a known path is 204 with `Allow`, anything else stays the router's 404.
///
/// Added to the router after every route, so that it wraps only the router's
/// not-found responder: Hummingbird fixes each route's middleware chain when
/// the route is added, and builds the not-found chain from every middleware
/// in `buildResponder()`. It acts only on the `HTTPError(.notFound)` that
/// responder throws, so it would be harmless anywhere else. The route label
/// of the request's metrics becomes the path's template.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let table: RouteMethods

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            // A method the table says the path answers was still not routed: trust the router (404).
            guard let route = table.route(for: request.uri.path), !route.methods.contains(request.method),
                !(table.head && request.method == .head && route.methods.contains(.get))
            else { throw error }
            context.coreContext.endpointPath.value = route.template
            let allow = route.allow(head: table.head)
            if request.method == .options {
                var headers = HTTPFields()
                headers[.allow] = allow
                headers[.cacheControl] = "no-store"
                return Response(status: .noContent, headers: headers)
            }
            throw APIError.methodNotAllowed(request.method, route: route.template, allow: allow)
        }
    }
}
