import Foundation
import Hummingbird
import KindredCore
import KindredSupport
import ScoreStore
import Scoring

/// The operator's dashboard under `/admin` (``AdminPages``): the same API
/// token as `/v1`, given in an `Authorization: Bearer` header, or once (as
/// `?token=` or in the sign-in form) to start a browser session
/// (``BrowserSessions``). A browser without a session is sent to the
/// sign-in form. Actions are POSTed forms; under a session each carries
/// the session's CSRF token, or nothing is done (403).
package enum AdminRoutes {
    typealias Context = WebRoutes.Context

    /// How a request proved it may see the dashboard.
    enum Credential {
        case header
        case session(Substring)
    }

    static func register(on router: Router<Context>, backend: WebBackend, token: String) {
        let sessions = BrowserSessions(token: token)
        let expected = Array(token.utf8)

        @Sendable func credential(_ request: Request) throws(APIError) -> Credential? {
            if let header = request.headers[.authorization] {
                guard header.hasPrefix("Bearer "), BearerTokenMiddleware<Context>.equal(Array(header.utf8.dropFirst(7)), expected) else {
                    throw APIError.unauthorized
                }
                return .header
            }
            let now = Int64(Date().timeIntervalSince1970)
            if let session = request.headers[.cookie].flatMap({ BrowserSessions.cookie(BrowserSessions.cookieName, in: $0) }),
                sessions.isValid(session, now: now)
            {
                return .session(session)
            }
            return nil
        }

        @Sendable func csrf(_ credential: Credential) -> String? {
            if case .session(let session) = credential { return sessions.csrfToken(for: session) }
            return nil
        }

        /// A GET page: `?token=` starts a session and comes back without it;
        /// no credential goes to the sign-in form.
        func page(_ path: String, _ render: @escaping @Sendable (Request, Context, String?) async throws -> Response) {
            router.get(RouterPath(path)) { request, context -> Response in
                if let given = request.uri.queryParameters.get("token") {
                    guard BearerTokenMiddleware<Context>.equal(Array(given.utf8), expected) else { throw APIError.unauthorized }
                    var query: [String] = []
                    for name in ["id", "notice"] {
                        if let value = request.uri.queryParameters.get(name) { query.append("\(name)=\(PercentEncoding.encode(String(value)))") }
                    }
                    return startSession(request, sessions, location: request.uri.path + (query.isEmpty ? "" : "?" + query.joined(separator: "&")))
                }
                guard let credential = try credential(request) else {
                    return redirect("/admin/sign-in?next=" + PercentEncoding.encode(request.uri.path))
                }
                return try await render(request, context, csrf(credential))
            }
        }

        /// A POST action: the credential, then (under a session) the form's CSRF token.
        func action(_ path: String, _ act: @escaping @Sendable (Request, Context, [String: String], String?) async throws -> Response) {
            router.post(RouterPath(path)) { request, context -> Response in
                let form = try await formFields(request)
                guard let credential = try credential(request) else { throw APIError.unauthorized }
                if case .session(let session) = credential {
                    guard let given = form["csrf"], sessions.isValidCSRF(Substring(given), session: session) else {
                        throw APIError(.forbidden, "csrf", "the form's CSRF token is missing or not this session's: reload the page")
                    }
                }
                return try await act(request, context, form, csrf(credential))
            }
        }

        page("admin") { _, _, csrf in
            html(AdminPages.overview(try await backend.adminOverview(), csrf: csrf))
        }
        page("admin/queue") { request, _, csrf in
            let notice = request.uri.queryParameters.get("notice").map { String($0) }
            return html(AdminPages.queue(try await backend.adminQueue(), csrf: csrf, notice: notice.map(noticeText)))
        }
        page("admin/runs") { _, _, csrf in
            let (runs, problems) = try await backend.adminRuns()
            return html(AdminPages.runs(runs, problems: problems, csrf: csrf, now: Int64(Date().timeIntervalSince1970)))
        }
        page("admin/shards") { _, _, csrf in
            let (shards, problems) = try await backend.adminShards()
            var breakers: [UInt32: String] = [:]
            for (shard, health) in backend.core.scores.manager.health() { breakers[shard] = "\(health.breaker)" }
            return html(AdminPages.shards(shards, breakers: breakers, problems: problems, csrf: csrf))
        }
        page("admin/members") { request, _, csrf in
            let notice = request.uri.queryParameters.get("notice").map { String($0) }.map(noticeText)
            guard let text = request.uri.queryParameters.get("id"), !text.isEmpty else {
                return html(AdminPages.member(nil, query: "", csrf: csrf, notice: notice))
            }
            guard let id = WebRoutes.parseMemberID(text) else {
                return html(
                    AdminPages.member(nil, query: String(text.prefix(32)), csrf: csrf, notice: "A member id is an integer from 1 to 4294967295."),
                    status: .badRequest)
            }
            return html(AdminPages.member(try await backend.adminMember(id), query: String(id), csrf: csrf, notice: notice))
        }

        action("admin/queue/retry") { _, _, form, _ in
            let members = try memberList(form)
            let moved = try await backend.adminRetryDead(members)
            return redirect("/admin/queue?notice=retried-\(moved)")
        }
        action("admin/queue/delete") { _, _, form, _ in
            let members = try memberList(form)
            let deleted = try await backend.adminDeleteDead(members)
            return redirect("/admin/queue?notice=deleted-\(deleted)")
        }
        action("admin/members/{id}/rebuild") { _, context, _, _ in
            let id = try WebRoutes.memberID(context, "id")
            let queued = try await backend.adminRebuild(id)
            return redirect("/admin/members?id=\(id)&notice=\(queued ? "rebuild-queued" : "queue-unavailable")")
        }

        router.get("admin/sign-in") { request, _ -> Response in
            html(AdminPages.signIn(next: safeNext(request.uri.queryParameters.get("next").map { String($0) }), failed: false))
        }
        router.post("admin/sign-in") { request, _ -> Response in
            let form = try await formFields(request)
            let next = safeNext(form["next"])
            guard let given = form["token"], BearerTokenMiddleware<Context>.equal(Array(given.utf8), expected) else {
                return html(AdminPages.signIn(next: next, failed: true), status: .unauthorized)
            }
            return startSession(request, sessions, location: next)
        }
        action("admin/sign-out") { _, _, _, _ in
            var headers = HTTPFields()
            headers[.location] = "/admin/sign-in"
            headers[.cacheControl] = "no-store"
            headers.append(HTTPFields.Element(name: .setCookie, value: "\(BrowserSessions.cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"))
            return Response(status: .seeOther, headers: headers)
        }
    }

    // MARK: Helpers

    /// The notices an action's redirect names (`retried-3`), as text.
    static func noticeText(_ code: String) -> String {
        let parts = code.split(separator: "-", maxSplits: 1)
        let count = parts.count == 2 ? Int(parts[1]) : nil
        switch (parts.first.map { String($0) }, count) {
        case ("retried", let n?): return "\(n) dead job\(n == 1 ? "" : "s") queued again."
        case ("deleted", let n?): return "\(n) dead job\(n == 1 ? "" : "s") deleted."
        default:
            switch code {
            case "rebuild-queued": return "A rebuild is queued (interactive priority)."
            case "queue-unavailable": return "The queue is unavailable: nothing was queued."
            default: return "Done."
            }
        }
    }

    /// The members a dead-letter action names: `member=ID`, or `all=1` (nil: all).
    static func memberList(_ form: [String: String]) throws(APIError) -> [MemberID]? {
        if form["all"] == "1" { return nil }
        guard let text = form["member"], let id = WebRoutes.parseMemberID(text) else {
            throw APIError.badRequest("give member=ID (an integer from 1 to 4294967295) or all=1")
        }
        return [id]
    }

    /// Where sign-in may send the browser: a dashboard or browse page of this site, else `/admin`.
    package static func safeNext(_ next: String?) -> String {
        guard let next, next == "/admin" || next.hasPrefix("/admin/") || next.hasPrefix("/browse/"), next.count <= 200,
            next.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }), !next.contains("//"), !next.contains("/..")
        else { return "/admin" }
        return next
    }

    /// Fields of an `application/x-www-form-urlencoded` body (at most 4 KB;
    /// a field given twice keeps the first).
    static func formFields(_ request: Request) async throws -> [String: String] {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: 4096)
        } catch {
            throw APIError(.contentTooLarge, "too_large", "a form is at most 4096 bytes")
        }
        return try parseForm(String(decoding: body.readableBytesView, as: UTF8.self))
    }

    /// Parses `a=1&b=x+y%21`. Throws for a malformed escape, more than 32
    /// fields, or a field name that is not a short word.
    package static func parseForm(_ text: String) throws(APIError) -> [String: String] {
        var fields: [String: String] = [:]
        guard !text.isEmpty else { return fields }
        let pairs = text.split(separator: "&", omittingEmptySubsequences: true)
        guard pairs.count <= 32 else { throw APIError.badRequest("a form has at most 32 fields") }
        for pair in pairs {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0]
            guard !name.isEmpty, name.count <= 32, name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || $0 == UInt8(ascii: "_") }) else {
                throw APIError.badRequest("a form field name must be a short lowercase word")
            }
            let raw = parts.count == 2 ? parts[1] : ""
            guard let value = PercentEncoding.decode(Substring(raw.replacingOccurrences(of: "+", with: " "))) else {
                throw APIError.badRequest("form field \(name) is not percent-encoded UTF-8")
            }
            if fields[String(name)] == nil { fields[String(name)] = value }
        }
        return fields
    }

    static func startSession(_ request: Request, _ sessions: BrowserSessions, location: String) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        headers[.cacheControl] = "no-store"
        let secure = request.headers[HTTPFields.Element.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
        headers.append(HTTPFields.Element(
            name: .setCookie, value: BrowserSessions.setCookie(sessions.issue(now: Int64(Date().timeIntervalSince1970)), secure: secure)))
        return Response(status: .seeOther, headers: headers)
    }

    static func redirect(_ location: String) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        headers[.cacheControl] = "no-store"
        return Response(status: .seeOther, headers: headers)
    }

    static func html(_ page: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        headers[HTTPFields.Element.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPFields.Element.Name("Referrer-Policy")!] = "no-referrer"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
    }
}
