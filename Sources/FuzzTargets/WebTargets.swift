import Hummingbird
import HummingbirdCore
import Scoring
import WebAPI

/// The web backend's own parameter parsing. Hummingbird splits the request
/// line, the path and the query; Kindred reads member ids from path
/// parameters, `offset`/`limit` from the query, the browse page's and the
/// dashboard's session from the Cookie header, and the dashboard's form
/// fields, sign-in target and CSRF token from the query text.
enum WebTargets {
    /// The input is split at NUL bytes into a path parameter, a query string
    /// and a Cookie header.
    static func parameters(_ bytes: UnsafeBufferPointer<UInt8>) -> FuzzTarget.Outcome {
        let parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        let idText = parts[0]
        let queryText = parts.count > 1 ? parts[1] : ""
        let cookieHeader = parts.count > 2 ? parts[2] : ""

        var problems: [String] = []
        if let id = WebRoutes.parseMemberID(idText) {
            require(id >= 1 && String(id) == idText.drop { $0 == "0" }, "a member id that is not the path's number")
        } else {
            problems.append("id")
        }
        let query = URI("/v1/members/1/matches?" + queryText).queryParameters
        for (name, range) in [("offset", 0...1_000_000), ("limit", 1...500)] {
            do throws(APIError) {
                let value = try WebRoutes.integer(query, name, default: range.lowerBound, range: range)
                require(range.contains(value), "\(name) outside its range")
            } catch {
                requireNoEcho(error.message, queryText.count > 64 ? queryText : "")
                problems.append(error.message)
            }
        }
        // A browser session from outside input never passes: forging one
        // takes the key (derived from the API token).
        if let session = BrowserSessions.cookie(BrowserSessions.cookieName, in: cookieHeader) {
            require(!fuzzSessions.isValid(session, now: 0), "a forged browser session was accepted")
        }
        // The dashboard's forms: parsed within their limits, never echoing the input at length.
        do throws(APIError) {
            let form = try AdminRoutes.parseForm(queryText)
            require(form.count <= 32, "a form with more than 32 fields was accepted")
            if let next = form["next"] {
                let safe = AdminRoutes.safeNext(next)
                require(safe == "/admin" || (safe == next && !safe.contains("//") && !safe.contains("/..")), "an unsafe sign-in target passed")
            }
            if let token = form["csrf"] {
                require(!fuzzSessions.isValidCSRF(Substring(token), session: "v1.9999999999.00000000000000000000000000000000.00"), "a forged CSRF token was accepted")
            }
        } catch {
            requireNoEcho(error.message, queryText.count > 64 ? queryText : "")
            problems.append(error.message)
        }
        return problems.isEmpty ? .accepted : .rejected(problems.joined(separator: "; "))
    }
}

private let fuzzSessions = BrowserSessions(token: "fuzz-token")
