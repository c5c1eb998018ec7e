import Foundation
import Hummingbird
import Scoring

/// `GET /browse/{id}`: a small server-rendered page for operators and the
/// demo: the member's profile fields (never their answers), their matches
/// ranked with score bars, and paging links. No JavaScript.
///
/// It shows member data, so it needs the API token too: in an
/// `Authorization: Bearer` header, or once in `?token=`, which starts a
/// browser session (``BrowserSessions``: a signed, expiring cookie, never
/// the token) and redirects to the same page without the token in its
/// address. The session opens read pages only, never the API.
package enum BrowsePage {
    /// The cookie that once carried the token itself: cleared, never read.
    static let legacyCookieName = "kindred_token"

    static func respond(_ request: Request, _ context: WebRoutes.Context, backend: WebBackend, token: String) async throws -> Response {
        let expected = Array(token.utf8)
        let sessions = BrowserSessions(token: token)
        let now = Int64(Date().timeIntervalSince1970)
        if let given = request.uri.queryParameters.get("token") {
            guard BearerTokenMiddleware<WebRoutes.Context>.equal(Array(given.utf8), expected) else { throw APIError.unauthorized }
            var query: [String] = []
            for name in ["offset", "limit"] {
                if let value = request.uri.queryParameters.get(name) { query.append("\(name)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")") }
            }
            var headers = HTTPFields()
            headers[.location] = request.uri.path + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
            let secure = request.headers[HTTPFields.Element.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
            headers.append(HTTPFields.Element(name: .setCookie, value: BrowserSessions.setCookie(sessions.issue(now: now), secure: secure)))
            headers.append(HTTPFields.Element(name: .setCookie, value: "\(legacyCookieName)=; Path=/browse; Max-Age=0; HttpOnly; SameSite=Strict"))
            headers[.cacheControl] = "no-store"
            return Response(status: .seeOther, headers: headers)
        }
        let fromHeader = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        if let fromHeader {
            guard BearerTokenMiddleware<WebRoutes.Context>.equal(Array(fromHeader.utf8), expected) else { throw APIError.unauthorized }
        } else {
            guard let session = request.headers[.cookie].flatMap({ BrowserSessions.cookie(BrowserSessions.cookieName, in: $0) }),
                sessions.isValid(session, now: now)
            else { throw APIError.unauthorized }
        }

        let id = try WebRoutes.memberID(context, "id")
        let query = request.uri.queryParameters
        let offset = try WebRoutes.integer(query, "offset", default: 0, range: 0...1_000_000)
        let limit = try WebRoutes.integer(query, "limit", default: 50, range: 1...backend.settings.maxPageSize)
        let member = try await backend.member(id)
        let page = try await backend.matches(id, offset: offset, limit: limit)
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html(member: member, page: page))))
    }

    static func html(member: Member, page: MatchesPage) -> String {
        let seeking = member.seeking.genders.map(\.name).joined(separator: ", ")
        let lastActive = member.lastActive.map { WebRoutes.rfc3339($0) } ?? "never"
        var rows = ""
        for (index, match) in page.matches.enumerated() {
            let rank = page.offset + index + 1
            let width = Int(match.tenths)  // percent of the bar: tenths of 10.0
            rows += """
                <tr><td class="rank">\(rank)</td><td><a href="/browse/\(match.id)">\(match.id)</a></td>\
                <td class="score">\(match.score)</td>\
                <td class="bar"><div style="width:\(width)%"></div></td></tr>\n
                """
        }
        let first = page.total == 0 ? 0 : min(page.offset + 1, page.total)
        let last = min(page.offset + page.matches.count, page.total)
        var links: [String] = []
        if page.offset > 0 {
            links.append("<a rel=\"prev\" href=\"/browse/\(page.member)?offset=\(max(0, page.offset - page.limit))&amp;limit=\(page.limit)\">&larr; previous</a>")
        }
        if page.offset + page.limit < page.total {
            links.append("<a rel=\"next\" href=\"/browse/\(page.member)?offset=\(page.offset + page.limit)&amp;limit=\(page.limit)\">next &rarr;</a>")
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Kindred: member \(member.id)</title>
            <style>
            body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:46em;color:#222}
            h1{font-size:1.4em;margin-bottom:.2em} .meta{color:#555;margin:.2em 0 1em}
            table{border-collapse:collapse;width:100%} td,th{padding:.25em .5em;border-bottom:1px solid #eee;text-align:left}
            td.rank,td.score{font-variant-numeric:tabular-nums;width:4em} td.bar{width:55%}
            td.bar div{height:.9em;background:#c2185b;border-radius:2px}
            nav{margin:1em 0;display:flex;gap:2em} .note{color:#2e7d32}
            </style></head>
            <body>
            <h1>Member \(member.id)</h1>
            <p class="meta">\(member.gender.name), \(member.age), seeking \(seeking) aged \(member.ageMin)&ndash;\(member.ageMax) &middot; last active \(lastActive)</p>
            <p class="meta">\(page.total) matches, ranked by score then id &middot; set generated \(WebRoutes.rfc3339(page.generatedAt))\(page.regenerated ? " &middot; <span class=\"note\">regenerated for this request</span>" : "")</p>
            <p class="meta">Showing \(first)&ndash;\(last) of \(page.total)</p>
            <table><thead><tr><th>#</th><th>member</th><th>score</th><th></th></tr></thead><tbody>
            \(rows)</tbody></table>
            <nav>\(links.joined(separator: " "))</nav>
            </body></html>

            """
    }
}
