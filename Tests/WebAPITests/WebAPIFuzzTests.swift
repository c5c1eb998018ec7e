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
/// The run is a fixed amount of work, not a time budget: every operation
/// gets its examples, its coverage cases and `KINDRED_FUZZ_EXAMPLES`
/// (default 100) generated cases, then the stateful phase chains them
/// through the document's links (~15-20 scenarios). A slow or stalled
/// machine makes the run longer, never thinner: a 40-second budget once
/// bought four requests on a loaded CI machine, and every other operation
/// went untested. `KINDRED_FUZZ_SECONDS`
/// adds a time budget on top, for long runs (fuzzing and the stateful phase
/// then repeat until it is spent; at most ~700 within the suite's time
/// limit). `KINDRED_FUZZ_SEED` replays a run (every run prints its seed) and
/// `KINDRED_FUZZ_VERBOSE=1` prints schemathesis' report and the requests
/// counted of a passing run too.
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
        let settings = try FuzzSettings(environment: environment)
        let seed = settings.seed ?? UInt32.random(in: 1...UInt32.max)
        let executable = try locateSchemathesis()
        print(
            "schemathesis: \(settings.examples) cases an operation"
                + (settings.seconds.map { ", repeated for \($0) s" } ?? "")
                + ", seed \(seed) (KINDRED_FUZZ_SEED replays it)")
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
                "--max-examples", String(settings.examples), "--seed", String(seed),
                // A full suite run loads both cores: one slow answer must not fail the run.
                "--workers", "1", "--request-timeout", "30", "--generation-database", "none",
                // Hypothesis' "too slow" health check measures the machine, not the API.
                "--suppress-health-check", "too_slow",
                "--no-color", "--output-truncate", "false",
            ] + (settings.seconds.map { ["--max-time", String($0)] } ?? [])
            let run = try await onThread("schemathesis") {
                try runProcess(
                    executable, arguments,
                    environment: ["SCHEMATHESIS_HOOKS": Self.hooks, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"],
                    timeout: settings.processTimeout)
            }
            if run.status != 0 {
                Issue.record(
                    """
                    schemathesis exited \(run.status) (seed \(seed); replay with KINDRED_FUZZ_SEED=\(seed)):
                    \(run.output.suffix(30_000))
                    """)
            }
            // It did reach every operation: each has requests counted under its method and route
            // (but the document itself, which schemathesis reads and does not test).
            let metrics = try await onThread { try httpGet(port: port, path: "/metrics", token: nil) }
            let counted = requestCounts(metrics)
            if environment["KINDRED_FUZZ_VERBOSE"] == "1" {
                print(run.output)
                print(metrics.split(separator: "\n").filter { $0.hasPrefix("kindred_http_requests_total{") }.joined(separator: "\n"))
            }
            // A route with parameters gets many cases; one without (a probe, /metrics) has one input
            // to try, which schemathesis sends at least once.
            // The dashboard (/admin) is not in the document: AdminDashboardTests and the web-parameters fuzz target cover it.
            for route in web.router.routes
            where route.method != .head && route.path.description != "/openapi.yaml" && !route.path.description.hasPrefix("/admin") {
                let least = route.path.description.contains("{") ? Double(min(settings.examples, 10)) : 1.0
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

/// How much the fuzzing test does, from `KINDRED_FUZZ_EXAMPLES`,
/// `KINDRED_FUZZ_SECONDS` and `KINDRED_FUZZ_SEED`. A value that does not
/// parse (an empty one too) is an error that names it, not a silent
/// default.
struct FuzzSettings: Equatable {
    /// Generated cases an operation (schemathesis' `--max-examples`).
    var examples = 100
    /// A time budget on top of the examples (`--max-time`), if any.
    var seconds: Int?
    var seed: UInt32?

    init(examples: Int = 100, seconds: Int? = nil, seed: UInt32? = nil) {
        self.examples = examples
        self.seconds = seconds
        self.seed = seed
    }

    init(environment: [String: String]) throws {
        func value<T: FixedWidthInteger>(_ name: String, in range: ClosedRange<T>) throws -> T? {
            guard let text = environment[name] else { return nil }
            guard let value = T(text), range.contains(value) else {
                throw HarnessError("\(name)=\(text) is not a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        examples = try value("KINDRED_FUZZ_EXAMPLES", in: 1...1000) ?? 100
        seconds = try value("KINDRED_FUZZ_SECONDS", in: 1...700)
        seed = try value("KINDRED_FUZZ_SEED", in: 1...UInt32.max)
    }

    /// How long the schemathesis process may run before it is killed and
    /// the test fails: the time budget and 90 s, or 10 minutes for a run of
    /// examples (at the default ~13 s alone here; 200 cases took ~150 s
    /// during a full run), inside the suite's 15-minute limit.
    var processTimeout: Duration {
        seconds.map { .seconds($0 + 90) } ?? .seconds(600)
    }
}

@Suite("Web API fuzzing settings")
struct FuzzSettingsTests {
    @Test("defaults: 100 cases an operation, no time budget, a fresh seed; the budget adds 90 s to the process bound")
    func defaults() throws {
        let none = try FuzzSettings(environment: [:])
        #expect(none == FuzzSettings(examples: 100, seconds: nil, seed: nil))
        #expect(none.processTimeout == .seconds(600))
        let set = try FuzzSettings(
            environment: ["KINDRED_FUZZ_EXAMPLES": "50", "KINDRED_FUZZ_SECONDS": "300", "KINDRED_FUZZ_SEED": "7"])
        #expect(set == FuzzSettings(examples: 50, seconds: 300, seed: 7))
        #expect(set.processTimeout == .seconds(390))
    }

    @Test("a value that is not a whole number in range is an error naming the variable", arguments: [
        ("KINDRED_FUZZ_EXAMPLES", "0"), ("KINDRED_FUZZ_EXAMPLES", "lots"), ("KINDRED_FUZZ_SECONDS", "701"),
        ("KINDRED_FUZZ_SECONDS", "-1"), ("KINDRED_FUZZ_SEED", "0"), ("KINDRED_FUZZ_SEED", "4294967296"),
    ])
    func refused(_ name: String, _ value: String) {
        #expect {
            try FuzzSettings(environment: [name: value])
        } throws: { error in
            "\(error)".contains("\(name)=\(value)")
        }
    }
}
