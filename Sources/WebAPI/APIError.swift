import Foundation
import Hummingbird

/// An error the API answers with: a status, a stable machine-readable code
/// and a message for people, rendered as `{"error": {"code", "message"}}`.
/// Messages name the problem (the parameter, the field, the id) and never
/// carry member data or internals.
package struct APIError: Error, HTTPResponseError, Sendable, Equatable, CustomStringConvertible {
    package let status: HTTPResponse.Status
    package let code: String
    package let message: String
    /// Seconds for `Retry-After` (503s).
    package let retryAfter: Int?
    /// The `Allow` header's methods (405s).
    package let allow: String?

    package init(_ status: HTTPResponse.Status, _ code: String, _ message: String, retryAfter: Int? = nil, allow: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
        self.allow = allow
    }

    package var description: String { "\(status.code) \(code): \(message)" }

    package static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "bad_request", message) }
    package static func notFound(_ id: UInt32) -> APIError { APIError(.notFound, "not_found", "no member \(id)") }
    package static func invalidMember(_ message: String) -> APIError { APIError(.unprocessableContent, "invalid_member", message) }
    package static let unauthorized = APIError(.unauthorized, "unauthorized", "a valid bearer token is required")
    package static func unavailable(_ message: String, retryAfter: Int) -> APIError {
        APIError(.serviceUnavailable, "unavailable", message, retryAfter: retryAfter)
    }
    /// A method the path does not answer; `allow` lists the ones it does.
    package static func methodNotAllowed(_ method: HTTPRequest.Method, route: String, allow: String) -> APIError {
        APIError(.methodNotAllowed, "method_not_allowed", "\(method) is not allowed on \(route); allowed: \(allow)", allow: allow)
    }
    package static func internalError(_ message: String) -> APIError { APIError(.internalServerError, "internal", message) }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if let allow { headers[.allow] = allow }
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"kindred\"" }
        var json = JSONOutput()
        json.raw("{\"error\":{\"code\":")
        json.string(code)
        json.raw(",\"message\":")
        json.string(message)
        json.raw("}}\n")
        return Response(status: status, headers: headers, body: .init(byteBuffer: json.buffer))
    }
}
