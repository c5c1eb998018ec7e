import Foundation
import Hummingbird
import KindredCore
@testable import KindredTestKit
import Logging
import ServiceLifecycle
import Testing
import TestSupport
import WebAPI

/// A schema-driven fuzzer (schemathesis, installed by scripts/setup) against
/// the real server on a live port: real MariaDB and Redis servers, the
/// fixture population loaded and its sets generated. It reads the served
/// `/openapi.yaml` and fails on any 5xx and on any answer the document does
/// not describe (status, content type, headers, body schema), on invalid
/// input that is accepted, on a wrong method that is not 405 with `Allow`,
/// and on an operation that answers without the token.
///
/// The fuzzer calls every route, the mutating ones too (PUT, DELETE, login):
/// they change only this test's own throwaway servers.
///
/// `KINDRED_FUZZ_SECONDS` (default 40; at most ~700 within the suite's time
/// limit) sets its time budget, `KINDRED_FUZZ_SEED` a seed to replay a run
/// (every run prints its own), and `KINDRED_FUZZ_VERBOSE=1` prints
/// schemathesis' report and the requests counted of a passing run too.
@Suite("Web API fuzzing", .timeLimit(.minutes(15)))
struct WebAPIFuzzTests {
    static let checks = [
        "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
        "response_schema_conformance", "negative_data_rejection", "unsupported_method", "allow_header_conformance",
        "ignored_auth", "use_after_free", "ensure_resource_availability",
    ]

    /// Tests/Fuzz/schemathesis_hooks.py: gives a generated member the path's id.
    static let hooks = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/schemathesis_hooks.py").path

    @Test("schemathesis finds no 5xx and no answer the OpenAPI document does not describe")
    func schemathesis() async throws {
        let environment = ProcessInfo.processInfo.environment
        let seconds = Int(environment["KINDRED_FUZZ_SECONDS"] ?? "") ?? 40
        let seed = UInt32(environment["KINDRED_FUZZ_SEED"] ?? "") ?? UInt32.random(in: 1...UInt32.max)
        let executable = try locateSchemathesis()
        print("schemathesis: \(seconds) s, seed \(seed) (KINDRED_FUZZ_SEED replays it)")
        let web = try await onThread { try WebHarness(memberLimit: 150) }
        try await web.withLiveServer(logLevel: .critical) { port in  // the fuzzer's invalid requests log warnings by design
            let base = "http://127.0.0.1:\(port)"
            // The served document, read here with the harness's own bound (30 s) and handed to the
            // fuzzer as a file: schemathesis gives a schema URL a fixed 10 s, which a full suite run
            // on two cores once exceeded (exit 2 before any case ran).
            let served = try await onThread { try httpGet(port: port, path: "/openapi.yaml", token: nil) }
            let document = try #require(served.range(of: "\r\n\r\n").map { String(served[$0.upperBound...]) })
            #expect(served.hasPrefix("HTTP/1.1 200") && document.hasPrefix("openapi:"), "\(served.prefix(300))")
            let schema = FileManager.default.temporaryDirectory.appendingPathComponent("kindred-openapi-\(port)-\(seed).yaml")
            try document.write(to: schema, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: schema) }
            let arguments = [
                "run", schema.path, "--url", base,
                "--header", "Authorization: Bearer \(WebHarness.token)",
                "--checks", Self.checks.joined(separator: ","),
                "--phases", "examples,coverage,fuzzing,stateful",
                "--max-time", String(seconds), "--seed", String(seed),
                // A full suite run loads both cores: one slow answer must not fail the run.
                "--workers", "1", "--request-timeout", "30", "--generation-database", "none",
                "--no-color", "--output-truncate", "false",
            ]
            let run = try await onThread("schemathesis") {
                try runProcess(
                    executable, arguments,
                    environment: ["SCHEMATHESIS_HOOKS": Self.hooks, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"],
                    timeout: .seconds(seconds + 90))
            }
            if run.status != 0 {
                Issue.record(
                    """
                    schemathesis exited \(run.status) (seed \(seed); replay with KINDRED_FUZZ_SEED=\(seed)):
                    \(run.output.suffix(30_000))
                    """)
            }
            // It did reach every operation: each has requests counted under its method and route
            // (but the document itself, which schemathesis reads and does not test). On a loaded
            // machine the time budget buys fewer cases: at least a few of each.
            let metrics = try await onThread { try httpGet(port: port, path: "/metrics", token: nil) }
            let counted = requestCounts(metrics)
            if environment["KINDRED_FUZZ_VERBOSE"] == "1" {
                print(run.output)
                print(metrics.split(separator: "\n").filter { $0.hasPrefix("kindred_http_requests_total{") }.joined(separator: "\n"))
            }
            // A route with parameters gets several cases; one without (a probe, /metrics) has one input
            // to try, which the time budget may reach once.
            // The dashboard (/admin) is not in the document: AdminDashboardTests and the web-parameters fuzz target cover it.
            for route in web.router.routes
            where route.method != .head && route.path.description != "/openapi.yaml" && !route.path.description.hasPrefix("/admin") {
                let least = route.path.description.contains("{") ? 2.0 : 1.0
                #expect((counted["\(route.method) \(route.path)"] ?? 0) >= least, "\(route.method) \(route.path): \(counted)")
            }
            // And the server is still whole.
            let health = try await onThread { try httpGet(port: port, path: "/healthz", token: nil) }
            #expect(health.hasPrefix("HTTP/1.1 200"), "\(health.prefix(300))")
        }
    }

    /// Requests per `METHOD route` (all statuses) in the Prometheus text.
    func requestCounts(_ metrics: String) -> [String: Double] {
        var counts: [String: Double] = [:]
        for line in metrics.split(separator: "\n") where line.hasPrefix("kindred_http_requests_total{") {
            guard let route = line.firstMatch(of: /route="([^"]*)"/)?.output.1,
                let method = line.firstMatch(of: /method="([^"]*)"/)?.output.1,
                let value = line.split(separator: " ").last.flatMap({ Double($0) })
            else { continue }
            counts["\(method) \(route)", default: 0] += value
        }
        return counts
    }
}

/// The schemathesis executable: on `PATH`, in pyenv's shims or pip's user
/// scripts. Missing is a failure that says how to install it.
func locateSchemathesis() throws -> String {
    let environment = ProcessInfo.processInfo.environment
    let home = environment["HOME"] ?? "/root"
    let dirs = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        + ["\(home)/.pyenv/shims", "\(home)/.local/bin", "/usr/local/bin"]
    for dir in dirs where FileManager.default.isExecutableFile(atPath: dir + "/schemathesis") {
        return dir + "/schemathesis"
    }
    throw HarnessError("schemathesis not found: install it with scripts/setup (pip install schemathesis, the version pinned there)")
}
