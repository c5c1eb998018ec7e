import Foundation
import Hummingbird
import KindredCore
@testable import KindredTestKit
import Logging
import NIOCore
import NIOEmbedded
import Scoring
import ServiceLifecycle
import Testing
import TestSupport
import WebAPI

/// Request bodies built to crash a parser: nesting far past the limit and
/// bytes that are not UTF-8, sent to the real router and to the server on a
/// real port.
@Suite("Web API: hostile request bodies", .timeLimit(.minutes(5)))
struct HostileInputTests {
    /// 150,000 levels of `[` in an unknown field of a valid member line:
    /// ~300 KB, under the 1 MiB body limit.
    static func deepDocument(_ member: MemberID) -> (body: [UInt8], column: Int) {
        var body = Array(memberLine(id: member, age: 30).utf8.dropLast())
        body += Array(#", "x": "#.utf8)
        let column = body.count + 64  // the line's object is level 1
        body += Array(repeating: UInt8(ascii: "["), count: 150_000) + Array(repeating: UInt8(ascii: "]"), count: 150_000)
        body.append(UInt8(ascii: "}"))
        return (body, column)
    }

    @Test("a PUT nested 150,000 levels deep, or holding invalid UTF-8, is a 422 naming the problem and the column; nothing is stored")
    func router() async throws {
        let web = try await onThread { try WebHarness(memberLimit: 50, generate: false) }
        let member: MemberID = 7_000_001
        let (deep, column) = Self.deepDocument(member)
        #expect(deep.count > 290_000 && deep.count < 1 << 20)
        let reply = try await sendBytes(web, .put, "/v1/members/\(member)", body: deep)
        #expect(reply.status == 422, "\(reply.body.prefix(300))")
        #expect(reply.errorCode == "invalid_member")
        #expect(reply.errorMessage == "nested deeper than 64 levels at column \(column) (member \(member))", "\(reply.body.prefix(300))")

        // Invalid UTF-8 (a lone continuation byte) in an unknown field's string.
        var bad = Array(memberLine(id: member, age: 30).utf8.dropLast())
        bad += Array(#", "nickname": "Al"#.utf8)
        let badColumn = bad.count + 1
        bad += [0x80] + Array(#"ce"}"#.utf8)
        let invalid = try await sendBytes(web, .put, "/v1/members/\(member)", body: bad)
        #expect(invalid.status == 422, "\(invalid.body.prefix(300))")
        #expect(invalid.errorMessage == "invalid UTF-8 at column \(badColumn) (member \(member))", "\(invalid.body)")
        #expect(!invalid.body.contains("Al"))

        // Neither was stored; a valid document still is.
        let read = try await web.send(.get, "/v1/members/\(member)/matches")
        #expect(read.status == 404, "\(read.body.prefix(300))")
        let good = try await sendBytes(web, .put, "/v1/members/\(member)", body: Array(memberLine(id: member, age: 30).utf8))
        #expect(good.status == 200, "\(good.body.prefix(300))")
    }

    @Test("the server on a real port answers a 150,000-deep PUT with 422 and keeps serving")
    func live() async throws {
        let web = try await onThread { try WebHarness(memberLimit: 50, generate: false) }
        let member = web.installation.members[0].id
        try await web.withLiveServer { port in
            let (deep, column) = Self.deepDocument(member)
            let response = try await onThread {
                try httpRequest("PUT", port: port, path: "/v1/members/\(member)", token: WebHarness.token, body: deep)
            }
            #expect(response.hasPrefix("HTTP/1.1 422"), "\(response.prefix(300))")
            #expect(response.contains("nested deeper than 64 levels at column \(column)"), "\(response.prefix(500))")
            let after = try await onThread { try httpGet(port: port, path: "/healthz", token: nil) }
            #expect(after.hasPrefix("HTTP/1.1 "), "the server stopped answering: \(after.prefix(200))")
        }
    }
}

/// Sends one request with a body of raw bytes to the harness's router.
private func sendBytes(
    _ web: WebHarness, _ method: HTTPRequest.Method, _ path: String, body: [UInt8]
) async throws -> WebHarness.Reply {
    var headers = HTTPFields()
    headers[.authorization] = "Bearer \(WebHarness.token)"
    headers[.contentLength] = String(body.count)
    let request = Request(
        head: HTTPRequest(method: method, scheme: "http", authority: "localhost", path: path, headerFields: headers),
        body: RequestBody(buffer: ByteBuffer(bytes: body)))
    var logger = Logger(label: "web-test")
    logger.logLevel = .warning
    let context = BasicRequestContext(source: ApplicationRequestContextSource(channel: NIOAsyncTestingChannel(), logger: logger))
    let response: Response
    do {
        response = try await web.responder.respond(to: request, context: context)
    } catch let error as any HTTPResponseError {
        response = try error.response(from: request, context: context)
    }
    let writer = CollectingWriter()
    try await response.body.write(writer)
    return WebHarness.Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: writer.collected))
}

