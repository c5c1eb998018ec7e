import Foundation
import HTTPTypes
@testable import KindredCore
@testable import KindredTestKit
import MariaDBClient
@_spi(Testing) import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Testing
import TestSupport
@testable import WebAPI
import WorkQueue

/// The operator's dashboard (`/admin`) as a person uses it: the token or a
/// session, every page, the CSRF-checked actions, and no member answers.
@Suite("Operator dashboard", .serialized, .timeLimit(.minutes(5)))
struct AdminDashboardTests {
    static let pages = ["/admin", "/admin/queue", "/admin/runs", "/admin/shards", "/admin/members", "/admin/members?id=5"]

    /// A session cookie for `web`, as `?token=` hands it out.
    static func session(_ web: WebHarness) async throws -> String {
        let reply = try await web.send(.get, "/admin?token=\(WebHarness.token)", token: nil)
        #expect(reply.status == 303, "\(reply.body)")
        let cookie = try #require(reply.headers[fields: .setCookie].map(\.value).first { $0.hasPrefix("kindred_session=") })
        return String(cookie.split(separator: ";")[0])
    }

    static func cookie(_ value: String) -> HTTPFields { [.cookie: value] }

    /// Runs `body` on a new connection to the installation's queue (blocking: call it on a thread).
    static func withQueue<T>(_ web: WebHarness, _ body: (QueueConnection) throws -> T) throws -> T {
        let queue = QueueConnection(try web.installation.queueServer.connect())
        defer { queue.close() }
        return try body(queue)
    }

    static func form(_ fields: [String: String]) -> String {
        fields.sorted { $0.key < $1.key }.map { "\($0.key)=\(PercentEncodingForTests.encode($0.value))" }.joined(separator: "&")
    }

    static let formHeaders: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    /// The CSRF token in a page's forms.
    static func csrf(in page: String) throws -> String {
        let marker = "name=\"csrf\" value=\""
        let start = try #require(page.range(of: marker)).upperBound
        return String(page[start...].prefix { $0 != "\"" })
    }

    @Test("every page answers with the bearer header, as HTML under a strict CSP; without a credential a page sends the browser to sign in and an action is refused")
    func pagesAndCredentials() async throws {
        let web = try await onThread { try WebHarness(memberLimit: 40) }
        for path in Self.pages {
            let reply = try await web.send(.get, path)
            #expect(reply.status == 200, "\(path): \(reply.status) \(reply.body.prefix(300))")
            #expect(reply.headers[.contentType] == "text/html; charset=utf-8", "\(path)")
            #expect(reply.headers[.contentSecurityPolicy]?.hasPrefix("default-src 'none'") == true, "\(path)")
            #expect(reply.headers[.cacheControl] == "no-store", "\(path)")
            #expect(!reply.body.contains("<script"), "\(path)")
        }
        let anonymous = try await web.send(.get, "/admin/queue", token: nil)
        #expect(anonymous.status == 303 && anonymous.headers[.location] == "/admin/sign-in?next=%2Fadmin%2Fqueue")
        let signIn = try await web.send(.get, "/admin/sign-in?next=%2Fadmin%2Fqueue", token: nil)
        #expect(signIn.status == 200 && signIn.body.contains("value=\"/admin/queue\""))
        #expect(try await web.send(.get, "/admin", token: "wrong").status == 401)
        #expect(try await web.send(.get, "/admin?token=wrong", token: nil).status == 401)
        let action = try await web.send(.post, "/admin/queue/retry", body: "all=1", token: nil, headers: Self.formHeaders)
        #expect(action.status == 401)
        #expect(try await web.send(.get, "/admin/members?id=0").status == 400)

        // An open run with its progress, failures by reason and an ETA.
        try await onThread {
            let connection = try web.installation.connectMySQL()
            defer { connection.close() }
            let store = BackfillRunStore(connection: connection)
            let run = try store.open(command: "backfill", key: "active:90d", selection: "active within 90d <test>", now: 1_800_000_000, planned: 100)
            try store.checkpoint(run.id, at: 40, done: 38, skipped: 0, gone: 0, failed: 2, failures: [
                BackfillFailure(member: 7, reason: "bad data"), BackfillFailure(member: 9, reason: "bad data"),
            ])
        }
        let runs = try await web.send(.get, "/admin/runs").body
        #expect(runs.contains("active within 90d &lt;test&gt;") && runs.contains("40% of 100") && runs.contains("bad data: 2"), "\(runs)")
        #expect(runs.contains(" min</td>"), "an open run shows its ETA")
        #expect(try await web.send(.get, "/admin/members?id=abc").status == 400)
    }

    @Test("?token= and the sign-in form start a session that is never the token; it opens the dashboard and /browse, not the API; a wrong token is refused; the next page stays on this site")
    func signIn() async throws {
        let web = try await onThread { try WebHarness(memberLimit: 40) }
        let session = try await Self.session(web)
        #expect(!session.contains(WebHarness.token))
        for path in Self.pages {
            #expect(try await web.send(.get, path, token: nil, headers: Self.cookie(session)).status == 200, "\(path)")
        }
        #expect(try await web.send(.get, "/browse/1", token: nil, headers: Self.cookie(session)).status == 200)
        #expect(try await web.send(.get, "/v1/members/1/matches", token: nil, headers: Self.cookie(session)).status == 401)

        let wrong = try await web.send(.post, "/admin/sign-in", body: Self.form(["token": "nope"]), token: nil, headers: Self.formHeaders)
        #expect(wrong.status == 401 && wrong.body.contains("not the API token") && wrong.headers[.setCookie] == nil)
        for (next, expected) in [
            ("/admin/queue", "/admin/queue"), ("/browse/3", "/browse/3"), ("https://evil.example/", "/admin"), ("//evil.example", "/admin"),
            ("/admin/../v1", "/admin"), ("/\\evil", "/admin"), ("", "/admin"),
        ] {
            let reply = try await web.send(
                .post, "/admin/sign-in", body: Self.form(["token": WebHarness.token, "next": next]), token: nil, headers: Self.formHeaders)
            #expect(reply.status == 303 && reply.headers[.location] == expected, "\(next): \(reply.headers[.location] ?? "none")")
            #expect(reply.headers[.setCookie]?.hasPrefix("kindred_session=v1.") == true)
        }
        // Signing out clears the cookie (the CSRF token is needed for that too).
        let page = try await web.send(.get, "/admin", token: nil, headers: Self.cookie(session))
        let out = try await web.send(
            .post, "/admin/sign-out", body: Self.form(["csrf": try Self.csrf(in: page.body)]), token: nil,
            headers: Self.formHeaders + Self.cookie(session))
        #expect(out.status == 303 && out.headers[.setCookie]?.contains("Max-Age=0") == true)
    }

    @Test("actions under a session need the page's CSRF token; dead letters retried and deleted, one or all; a rebuild queued from the member page")
    func actions() async throws {
        let web = try await onThread { try WebHarness(memberLimit: 40) }
        let work = WorkQueue()
        try await onThread {
            try Self.withQueue(web) { queue in
                try work.enqueue([3, 4, 5], priority: .repair, on: queue)
                while let job = try work.fetch(worker: "test", on: queue) { _ = try work.bury(job, worker: "test", reason: "bad <data> & more", on: queue) }
            }
        }
        let session = try await Self.session(web)
        let page = try await web.send(.get, "/admin/queue", token: nil, headers: Self.cookie(session))
        #expect(page.status == 200 && page.body.contains("bad &lt;data&gt; &amp; more") && !page.body.contains("<data>"))
        let token = try Self.csrf(in: page.body)
        let other = try Self.csrf(in: try await web.send(.get, "/admin", token: nil, headers: Self.cookie(try await Self.session(web))).body)
        #expect(other != token, "two sessions share a CSRF token")

        let headers = Self.formHeaders + Self.cookie(session)
        // A token one character off (never the token itself: it may start with "0").
        let altered = (token.first == "0" ? "1" : "0") + token.dropFirst()
        for refused in [["member": "3"], ["member": "3", "csrf": altered], ["member": "3", "csrf": other]] {
            let reply = try await web.send(.post, "/admin/queue/retry", body: Self.form(refused), token: nil, headers: headers)
            #expect(reply.status == 403, "\(refused): \(reply.status)")
        }
        #expect(try await onThread { try Self.withQueue(web) { try work.stats(on: $0).dead } } == 3, "a refused action did something")

        let retried = try await web.send(.post, "/admin/queue/retry", body: Self.form(["member": "3", "csrf": token]), token: nil, headers: headers)
        #expect(retried.status == 303 && retried.headers[.location] == "/admin/queue?notice=retried-1")
        #expect(try await web.send(.get, "/admin/queue?notice=retried-1", token: nil, headers: Self.cookie(session)).body.contains("1 dead job queued again."))
        let deleted = try await web.send(.post, "/admin/queue/delete", body: Self.form(["all": "1", "csrf": token]), token: nil, headers: headers)
        #expect(deleted.status == 303 && deleted.headers[.location] == "/admin/queue?notice=deleted-2")
        let stats = try await onThread { try Self.withQueue(web) { try work.stats(on: $0) } }
        #expect(stats.dead == 0 && stats.waiting[.repair] == 1)

        let rebuild = try await web.send(.post, "/admin/members/7/rebuild", body: Self.form(["csrf": token]), token: nil, headers: headers)
        #expect(rebuild.status == 303 && rebuild.headers[.location] == "/admin/members?id=7&notice=rebuild-queued")
        #expect(try await onThread { try Self.withQueue(web) { try work.stats(on: $0).waiting[.interactive] } } == 1)
        // With the bearer header (a script, not a browser) no CSRF token is needed.
        let scripted = try await web.send(.post, "/admin/queue/retry", body: "all=1", headers: Self.formHeaders)
        #expect(scripted.status == 303)
        let bad = try await web.send(.post, "/admin/queue/retry", body: "member=x", headers: Self.formHeaders)
        #expect(bad.status == 400)
        let malformed = try await web.send(.post, "/admin/queue/retry", body: "member=%zz", headers: Self.formHeaders)
        #expect(malformed.status == 400)
    }

    @Test("the member page shows a profile summary and the set's state (current, stale, missing, deleted), never the answers; no page shows answers")
    func memberPage() async throws {
        let web = try await onThread { try WebHarness(memberLimit: 40) }
        let member = try #require(web.installation.members.first { $0.answers.count >= 2 })
        let current = try await web.send(.get, "/admin/members?id=\(member.id)")
        #expect(current.status == 200 && current.body.contains(">current<"), "\(current.body)")
        #expect(current.body.contains("\(member.answers.count) questions answered (not shown)"))
        #expect(current.body.contains("/browse/\(member.id)"))

        // Stale: the answers changed in MySQL since the set was written.
        var changed = member
        changed.answers = Array(member.answers.dropFirst())
        let updated = changed
        try await onThread {
            let connection = try web.installation.connectMySQL()
            defer { connection.close() }
            try MemberRepository(connection: connection, survey: web.installation.survey).upsert([updated])
        }
        #expect(try await web.send(.get, "/admin/members?id=\(member.id)").body.contains(">stale<"))
        // Missing: the shard lost the set.
        let other = try #require(web.installation.members.first { $0.id != member.id })
        try await onThread {
            let store = web.installation.scoreStore()
            defer { store.manager.close() }
            let shard = try #require(try GenerationStore(connection: try web.installation.connectMySQL()).generation(of: other.id)).shardID
            _ = try store.removeSet(other.id, shard: shard)
        }
        let missing = try await web.send(.get, "/admin/members?id=\(other.id)")
        #expect(missing.body.contains(">missing<") && missing.body.contains("no set on the shard"), "\(missing.body)")
        #expect(try await web.send(.delete, "/v1/members/\(other.id)").status < 300)
        #expect(try await web.send(.get, "/admin/members?id=\(other.id)").body.contains("Deleted."))
        #expect(try await web.send(.get, "/admin/members?id=4000000000").body.contains("No such member."))

        // No page shows an answer: the answer fields never appear.
        for path in Self.pages + ["/admin/members?id=\(member.id)", "/admin/members?id=\(other.id)"] {
            let body = try await web.send(.get, path).body
            for word in ["importance", "accept", "\"q\"", "answer\""] {
                #expect(!body.contains(word), "\(path) shows \(word)")
            }
        }
    }

    @Test("the overview counts members, sets and the queue, shows live workers and the throughput a running worker published; what is not fine stands out")
    func overview() async throws {
        let web = try await onThread { try WebHarness(memberLimit: 60, generate: false) }
        let worker = try await onThread { try KindredProcess.startWorker(web.installation) }
        defer { worker.terminate() }
        try await onThread { try web.installation.enqueueAll() }
        try await onThread { try KindredProcess.waitForGenerated(web.installation, atLeast: 60, worker: worker) }
        // The worker publishes its counters every 5 s: wait (bounded) until the queue's Redis has them all.
        try await onThread {
            try Self.withQueue(web) { queue in
                try poll(until: "the worker's counters published", timeout: .seconds(30), interval: .milliseconds(100)) {
                    let minute = ThroughputRecorder.minute(of: Date())
                    let counts = try WorkQueue().throughput((minute - 5)...minute, on: queue)
                    return counts.values.reduce(0) { $0 + ($1["jobs_done"] ?? 0) } >= 60
                }
            }
        }
        let page = try await web.send(.get, "/admin")
        #expect(page.status == 200)
        let body = page.body
        #expect(body.contains("<b>60</b><span>live members</span>"), "\(body.prefix(2000))")
        #expect(body.contains("<b>60</b><span>sets current</span>"))
        #expect(body.contains("<b>2</b><span>workers alive</span>"), "the worker's two threads heartbeat")
        #expect(body.contains(" ago</td>"), "the workers' table lists their heartbeats")
        #expect(body.components(separatedBy: "<svg").count - 1 == 4, "four charts")
        #expect(body.contains("<polyline"), "the charts draw the published minutes")
        #expect(!body.contains("class=\"card bad\""), "nothing is wrong yet")

        // A dead letter stands out (the worker stopped first, or it would take the job).
        try await onThread { worker.terminate() }
        try await onThread {
            try Self.withQueue(web) { queue in
                try WorkQueue().enqueue([9], priority: .repair, on: queue)
                let job = try #require(try WorkQueue().fetch(worker: "test", on: queue))
                _ = try WorkQueue().bury(job, worker: "test", reason: "bad data", on: queue)
            }
        }
        let after = try await web.send(.get, "/admin")
        #expect(after.body.contains("<div class=\"card bad\"><b>1</b><span>dead letters</span>"), "\(after.body.prefix(3000))")
    }

    @Test("the dashboard's pure parts: forms, the next page, escaping, per-minute counters and their latency quantiles")
    func pureParts() throws {
        #expect(try AdminRoutes.parseForm("a=1&b=x+y%21&a=2") == ["a": "1", "b": "x y!"])
        #expect(try AdminRoutes.parseForm("") == [:])
        #expect(try AdminRoutes.parseForm("csrf=&all=1") == ["csrf": "", "all": "1"])
        for bad in ["a=%zz", "A=1", "=1", String(repeating: "a=1&", count: 33), "a=%ff", "na-me=1"] {
            #expect(throws: APIError.self, "\(bad)") { try AdminRoutes.parseForm(bad) }
        }
        #expect(AdminRoutes.safeNext("/admin/members?id=3") == "/admin/members?id=3")
        #expect(AdminRoutes.safeNext(nil) == "/admin")
        #expect(AdminRoutes.safeNext("/admin\u{0}x") == "/admin")
        #expect(AdminPages.escape("<a href='x'>&\"</a>\u{7}") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt; ")
        #expect(AdminPages.number(1_234_567) == "1,234,567" && AdminPages.number(-12) == "-12" && AdminPages.number(999) == "999")

        let recorder = ThroughputRecorder()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        recorder.add("jobs_done", 2, now: now)
        for ms in [5, 7, 40, 2_000, 90_000] { recorder.latency(milliseconds: Int64(ms), now: now) }
        recorder.add("jobs_done", now: now.addingTimeInterval(60))
        let drained = try #require(recorder.nextBatch()).counts
        let minute = ThroughputRecorder.minute(of: now)
        #expect(drained[minute]?["jobs_done"] == 2 && drained[minute + 1]?["jobs_done"] == 1)
        #expect(drained[minute]?["latency_le_10"] == 2 && drained[minute]?["latency_le_50"] == 1 && drained[minute]?["latency_le_inf"] == 1)
        let fields = drained[minute]!
        #expect(ThroughputRecorder.latencyQuantile(0.5, of: fields) == 50)
        #expect(ThroughputRecorder.latencyQuantile(0.2, of: fields) == 10)
        #expect(ThroughputRecorder.latencyQuantile(0.99, of: fields) == .infinity)
        #expect(ThroughputRecorder.latencyQuantile(0.5, of: [:]) == nil)
    }
}

/// Percent-encoding for the test's form bodies (everything but unreserved characters).
enum PercentEncodingForTests {
    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")) ?? ""
    }
}

extension HTTPFields {
    static func + (lhs: HTTPFields, rhs: HTTPFields) -> HTTPFields {
        var result = lhs
        result.append(contentsOf: rhs)
        return result
    }
}
