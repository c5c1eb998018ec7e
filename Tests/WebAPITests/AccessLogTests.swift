import Foundation
import Hummingbird
import KindredLogging
@testable import KindredTestKit
import Logging
import Scoring
import Testing
import TestSupport
import WebAPI

/// The web backend's access log and `X-Request-ID`, through the real router
/// over real servers.
@Suite("Access log", .timeLimit(.minutes(5)))
struct AccessLogTests {
    static let requestID = HTTPFields.Element.Name("X-Request-ID")!

    @Test("one line per request: method, route template, status, duration, request id; never the path, query or token")
    func lines() async throws {
        let logs = LogRecorder()
        let web = try await onThread { try WebHarness(memberLimit: 60, accessLog: logs) }
        let member = web.installation.members[0].id

        var given = HTTPFields()
        given[Self.requestID] = "req-42:abc/DEF_~!"
        let page = try await web.send(.get, "/v1/members/\(member)/matches?limit=3", headers: given)
        #expect(page.status == 200 && page.headers[Self.requestID] == "req-42:abc/DEF_~!")

        // Errors carry the id too; an unusable one is replaced by a fresh one.
        var tooLong = HTTPFields()
        tooLong[Self.requestID] = String(repeating: "a", count: 129)
        let denied = try await web.send(.get, "/v1/members/\(member)/matches", token: nil, headers: tooLong)
        #expect(denied.status == 401)
        let replaced = try #require(denied.headers[Self.requestID])
        #expect(replaced.count == 32 && replaced.allSatisfy(\.isHexDigit), "\(replaced)")
        var spaced = HTTPFields()
        spaced[Self.requestID] = "has space"
        let unknown = try await web.send(.get, "/v1/nothing", headers: spaced)
        #expect(unknown.status == 404 && unknown.headers[Self.requestID] != "has space" && unknown.headers[Self.requestID]?.count == 32)
        let generated = try await web.send(.get, "/v1/members/0/matches")
        #expect(generated.status == 400 && generated.headers[Self.requestID]?.count == 32)
        #expect(generated.headers[Self.requestID] != unknown.headers[Self.requestID])
        // The browse page's one-time ?token= must not reach the log.
        let browse = try await web.send(.get, "/browse/\(member)?token=\(WebHarness.token)", token: nil)
        #expect(browse.status == 303)
        let probe = try await web.send(.get, "/livez", token: nil)
        #expect(probe.status == 200)

        let entries = logs.all.filter { $0.message == "request" }
        #expect(entries.count == 6, "\(entries.map(\.metadata))")
        let expected: [(String, String, String, String?, Logger.Level)] = [
            ("GET", "/v1/members/{id}/matches", "200", "req-42:abc/DEF_~!", .info),
            ("GET", "/v1/members/{id}/matches", "401", replaced, .info),
            ("GET", "NotFound", "404", unknown.headers[Self.requestID], .info),
            ("GET", "/v1/members/{id}/matches", "400", generated.headers[Self.requestID], .info),
            ("GET", "/browse/{id}", "303", browse.headers[Self.requestID], .info),
            ("GET", "/livez", "200", probe.headers[Self.requestID], .debug),
        ]
        for (entry, (method, route, status, id, level)) in zip(entries, expected) {
            #expect(entry.metadata["method"] == method && entry.metadata["route"] == route && entry.metadata["status"] == status, "\(entry.metadata)")
            #expect(entry.metadata["request_id"] == id, "\(entry.metadata)")
            #expect(entry.level == level, "\(entry.metadata)")
            let duration = try #require(entry.metadata["duration_ms"].flatMap(Double.init), "\(entry.metadata)")
            #expect(duration >= 0 && duration < 60_000)
        }
        // Exactly these fields: no path, no query, no headers.
        for entry in logs.all {
            #expect(Set(entry.metadata.keys) == ["method", "route", "status", "duration_ms", "request_id"], "\(entry.metadata)")
            #expect(!"\(entry.metadata)".contains(WebHarness.token), "a token in the log: \(entry.metadata)")
        }
        // In the JSON format (KINDRED_LOG_FORMAT=json) status and duration_ms
        // are numbers, as docs/observability.md says, not strings ("15.554").
        for entry in entries {
            let line = LogRecord(
                time: LogRecord.WallTime(unixMilliseconds: 0), level: entry.level, label: "access", message: entry.message,
                metadata: entry.values
            ).json
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            let metadata = try #require(object["metadata"] as? [String: Any], "\(line)")
            let status = try #require(metadata["status"] as? NSNumber, "status is not a number: \(line)")
            #expect(entry.metadata["status"] == status.stringValue, "\(line)")
            let duration = try #require(metadata["duration_ms"] as? NSNumber, "duration_ms is not a number: \(line)")
            #expect(duration.doubleValue >= 0 && duration.doubleValue < 60_000, "\(line)")
            // At most three decimals (microseconds), whatever the JSON number's form.
            let text = try #require(line.split(separator: "\"duration_ms\":").last?.prefix { $0 != "," && $0 != "}" })
            #expect(text.split(separator: ".").last.map { $0.count <= 3 } ?? true, "\(line)")
            #expect(!line.contains("\"status\":\"") && !line.contains("\"duration_ms\":\""), "\(line)")
        }
    }
}
