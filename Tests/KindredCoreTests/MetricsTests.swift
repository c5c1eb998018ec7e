import CoreMetrics
import Foundation
import KindredCore
import KindredSupport
@testable import KindredTestKit
import MetricsEndpoint
import Prometheus
import ScoreStore
import Scoring
import Testing
import TestSupport

/// Every program's `/metrics`, scraped from real `kindred serve` and
/// `kindred worker` processes over a real installation, read by a real
/// exposition-format parser (Python's prometheus_client, installed by
/// scripts/setup) and checked line by line for HELP and TYPE (the parser
/// does not mind a missing HELP).
@Suite("Metrics", .serialized, .offCooperativePool, .timeLimit(.minutes(5)))
struct MetricsTests {
    /// The families every program exports besides its own `kindred_*` ones.
    static let processFamilies: Set<String> = [
        "process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
        "process_max_fds", "process_start_time_seconds",
    ]

    @Test("serve and worker: every family parses and has HELP and TYPE; each program exports only its own families")
    func exposition() async throws {
        try await onThread("metrics-exposition") {
            let installation = try Installation(memberLimit: 60)
            let binary = try WorkerChecks.binary()
            let logs = try makeTemporaryDirectory(prefix: "kindred-metrics")
            var environment = installation.environment
            environment["KINDRED_API_TOKEN"] = WebHarness.token
            let servePort = Int(try freeLoopbackPort())
            let workerPort = Int(try freeLoopbackPort())
            let serve = try ServerProcess(
                name: "serve", executable: binary, arguments: ["serve", "--listen", "127.0.0.1:\(servePort)", "--log-level", "info"],
                logFile: logs.appendingPathComponent("serve.log"), environment: environment)
            defer { serve.terminate() }
            let worker = try ServerProcess(
                name: "worker", executable: binary,
                arguments: ["worker", "--workers", "1", "--metrics", "127.0.0.1:\(workerPort)", "--log-level", "info"],
                logFile: logs.appendingPathComponent("worker.log"), environment: environment)
            defer { worker.terminate() }
            for (process, port) in [(serve, servePort), (worker, workerPort)] {
                try poll(until: "\(process.name) ready", timeout: .seconds(90), interval: .milliseconds(100)) {
                    guard process.isRunning else { throw TestSupportError("\(process.name) exited: \(process.logTail())") }
                    return (try? httpGet(port: port, path: "/readyz", token: nil))?.hasPrefix("HTTP/1.1 200") ?? false
                }
                let live = try httpGet(port: port, path: "/livez", token: nil)
                #expect(live.hasPrefix("HTTP/1.1 200"), "\(process.name): \(live.prefix(200))")
            }
            // Traffic, so that the HTTP families have series: a page (regenerated on read) and an unknown path.
            let member = installation.members[0].id
            let page = try httpGet(port: servePort, path: "/v1/members/\(member)/matches?limit=3", token: WebHarness.token)
            #expect(page.hasPrefix("HTTP/1.1 200"), "\(page.prefix(300))")
            let unknown = try httpGet(port: servePort, path: "/nothing", token: nil)
            #expect(unknown.hasPrefix("HTTP/1.1 404"))
            // Each program's collector has run once (it publishes the shard gauges).
            var texts: [MetricsProgram: String] = [:]
            for (program, port) in [(MetricsProgram.serve, servePort), (.worker, workerPort)] {
                try poll(until: "\(program)'s shard gauges", timeout: .seconds(30), interval: .milliseconds(100)) {
                    let response = try httpGet(port: port, path: "/metrics", token: nil)
                    texts[program] = response.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
                    return texts[program]!.contains("\nkindred_shard_up{")
                }
            }
            let serveText = try #require(texts[.serve])
            let workerText = try #require(texts[.worker])
            // Kept next to the logs, to read when a check fails.
            try serveText.write(to: logs.appendingPathComponent("serve.metrics"), atomically: true, encoding: .utf8)
            try workerText.write(to: logs.appendingPathComponent("worker.metrics"), atomically: true, encoding: .utf8)
            let serveFamilies = try Self.check(serveText, program: .serve)
            let workerFamilies = try Self.check(workerText, program: .worker)

            #expect(serveFamilies.contains("kindred_http_requests_total") && serveFamilies.contains("kindred_http_request_seconds"))
            #expect(serveText.contains("kindred_http_requests_total{route=\"NotFound\",method=\"GET\",status=\"404\"} 1"))
            #expect(!serveFamilies.contains("kindred_jobs_total") && !serveFamilies.contains("kindred_queue_depth"))
            #expect(workerFamilies.contains("kindred_jobs_total") && workerFamilies.contains("kindred_queue_depth"))
            #expect(!workerFamilies.contains { $0.hasPrefix("kindred_http_") || $0.hasPrefix("kindred_web_") })
            for (text, program) in [(serveText, "serve"), (workerText, "worker")] {
                #expect(
                    text.contains(
                        "kindred_build_info{version=\"\(KindredVersion.current)\",swift=\"\(KindredMetrics.swiftVersion)\",program=\"\(program)\"} 1"
                    ), "\(program)")
            }
            // The process families are this process's: its start time is recent, it holds open descriptors.
            let start = try #require(Self.value("process_start_time_seconds", in: serveText))
            #expect(abs(start - Date().timeIntervalSince1970) < 600, "\(start)")
            #expect((Self.value("process_open_fds", in: workerText) ?? 0) > 3)
            #expect((Self.value("process_resident_memory_bytes", in: serveText) ?? 0) > 1_000_000)
        }
    }

    @Test("a shard that leaves the shard list loses its gauges, also after a late probe records it again; the others keep theirs; back in the list, it is reported again")
    func aRemovedShardLosesItsGauges() async throws {
        try await onThread("metrics-removed-shard") {
            let web = try WebHarness(memberLimit: 30, generate: false)
            let collector = Maintenance.metricsCollector(web.core)
            try collector.runOnce()
            let endpoints = web.core.scores.manager.shards
            #expect(endpoints.count == 3)
            for endpoint in endpoints {
                #expect(web.registry.sample("kindred_shard_up", "shard", String(endpoint.id)) == 1, "shard \(endpoint.id)")
                #expect(web.registry.sample("kindred_shard_breaker_state", "shard", String(endpoint.id)) == 0, "shard \(endpoint.id)")
            }
            let removed = try #require(endpoints.last)
            let kept = endpoints.filter { $0.id != removed.id }
            func up(_ shard: UInt32) -> Double? { web.registry.sample("kindred_shard_up", "shard", String(shard)) }

            web.core.scores.manager.update(shards: kept)
            try collector.runOnce()
            #expect(up(removed.id) == nil)
            #expect(web.registry.sample("kindred_shard_breaker_state", "shard", String(removed.id)) == nil)
            for endpoint in kept { #expect(up(endpoint.id) == 1, "shard \(endpoint.id)") }

            // A probe that read the list just before the shard left records it once more.
            web.core.metrics.shardUp(removed.id).record(0)
            #expect(up(removed.id) == 0)
            try collector.runOnce()
            #expect(up(removed.id) == nil)

            web.core.scores.manager.update(shards: endpoints)
            try collector.runOnce()
            #expect(up(removed.id) == 1)
        }
    }

    @Test("every family of the catalogue, made through the factory, has its HELP; the registries of both programs parse")
    func catalogue() throws {
        for program in [MetricsProgram.worker, .serve] {
            let registry = PrometheusCollectorRegistry()
            let metrics = KindredMetrics.prometheus(registry: registry, program: program)
            // Every family the program may export, including those it makes only when used.
            metrics.shardErrors(1).increment()
            metrics.breakerState(1).record(0)
            metrics.shardUp(1).record(1)
            metrics.jobPhase("scan").recordNanoseconds(1_000)
            metrics.scoresWritten.increment()
            metrics.placements("entered").increment()
            let text = MetricsExposition(registry: registry).text()
            let families = try Self.check(String(decoding: text, as: UTF8.self), program: program)
            let expected = Set(KindredMetrics.families.filter { $0.value.programs.contains(program) }.keys)
                .subtracting(program == .serve ? ["kindred_http_requests_total", "kindred_http_request_seconds", "kindred_web_read_batches_total", "kindred_web_read_batched_requests_total", "kindred_web_read_batch_answers_total", "kindred_web_set_reads_total"] : [])
            #expect(expected.isSubset(of: families), "\(program): missing \(expected.subtracting(families))")
        }
    }

    /// The value of the unlabelled sample `name`.
    static func value(_ name: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
    }

    /// Checks one exposition and returns its family names: every sample
    /// belongs to a family with a TYPE and a non-empty HELP, the parser
    /// reads it whole with every family typed and documented, and every
    /// family is a `process_*` one or one of `program`'s.
    @discardableResult
    static func check(_ text: String, program: MetricsProgram, sourceLocation: SourceLocation = #_sourceLocation) throws -> Set<String> {
        var help: [String: String] = [:]
        var type: [String: String] = [:]
        var samples: [String] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            if line.hasPrefix("# HELP ") {
                #expect(help[parts[2]] == nil, "two HELP lines for \(parts[2])", sourceLocation: sourceLocation)
                help[parts[2]] = parts.count > 3 ? parts[3] : ""
            } else if line.hasPrefix("# TYPE ") {
                #expect(type[parts[2]] == nil, "two TYPE lines for \(parts[2])", sourceLocation: sourceLocation)
                type[parts[2]] = parts.count > 3 ? parts[3] : ""
            } else if !line.hasPrefix("#") {
                samples.append(String(line.prefix { $0 != "{" && $0 != " " }))
            }
        }
        for sample in Set(samples) {
            let family = [sample] + ["_bucket", "_sum", "_count"].filter { sample.hasSuffix($0) }.map { String(sample.dropLast($0.count)) }
            #expect(family.contains { type[$0] != nil }, "\(program): sample \(sample) has no TYPE", sourceLocation: sourceLocation)
        }
        for name in type.keys.sorted() {
            #expect(!(help[name] ?? "").trimmingCharacters(in: .whitespaces).isEmpty, "\(program): family \(name) has no HELP", sourceLocation: sourceLocation)
            #expect(["counter", "gauge", "histogram", "summary"].contains(type[name]!), "\(program): \(name) has TYPE \(type[name]!)", sourceLocation: sourceLocation)
            if name.hasPrefix("process_") { continue }
            let family = KindredMetrics.families[name]
            #expect(family?.programs.contains(program) == true, "\(program) exports \(name), which is not one of its families", sourceLocation: sourceLocation)
        }
        #expect(processFamilies.isSubset(of: Set(type.keys)), "\(program): missing \(processFamilies.subtracting(type.keys))", sourceLocation: sourceLocation)
        #expect(Set(help.keys) == Set(type.keys), "\(program): HELP without TYPE or the reverse", sourceLocation: sourceLocation)

        // The real parser: it must read everything, every family typed and documented.
        let parsed = try parseWithPrometheusClient(text)
        #expect(!parsed.isEmpty, sourceLocation: sourceLocation)
        for family in parsed {
            #expect(family.type != "unknown", "\(program): the parser did not type \(family.name)", sourceLocation: sourceLocation)
            #expect(!family.documentation.isEmpty, "\(program): the parser found no HELP for \(family.name)", sourceLocation: sourceLocation)
        }
        // The parser names a counter without `_total`.
        let parsedNames = Set(parsed.map(\.name))
        for name in type.keys {
            let base = type[name] == "counter" && name.hasSuffix("_total") ? String(name.dropLast(6)) : name
            #expect(parsedNames.contains(base), "\(program): the parser did not return \(name)", sourceLocation: sourceLocation)
        }
        return Set(type.keys)
    }

    struct ParsedFamily: Decodable {
        var name: String
        var type: String
        var documentation: String
        var samples: Int
    }

    /// The families prometheus_client's parser reads from `text`. Missing
    /// python3 or prometheus_client is a failure that says how to install it.
    static func parseWithPrometheusClient(_ text: String) throws -> [ParsedFamily] {
        let environment = ProcessInfo.processInfo.environment
        let home = environment["HOME"] ?? "/root"
        let dirs = (environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["\(home)/.pyenv/shims", "/usr/local/bin", "/usr/bin"]
        guard let python = dirs.map({ $0 + "/python3" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw HarnessError("python3 not found: the metrics tests parse /metrics with prometheus_client (install it with scripts/setup)")
        }
        let directory = try makeTemporaryDirectory(prefix: "kindred-metrics-text")
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("metrics.txt")
        try text.write(to: input, atomically: true, encoding: .utf8)
        let script = """
            import json, sys
            try:
                from prometheus_client.parser import text_string_to_metric_families
            except ImportError as error:
                print("MISSING " + str(error))
                sys.exit(3)
            families = text_string_to_metric_families(open(sys.argv[1], encoding="utf-8").read())
            print("JSON " + json.dumps([
                {"name": f.name, "type": f.type, "documentation": f.documentation, "samples": len(f.samples)} for f in families
            ]))
            """
        let run = try runProcess(python, ["-c", script, input.path], timeout: .seconds(60))
        if run.status == 3 {
            throw HarnessError("prometheus_client is not installed for \(python): run scripts/setup (\(run.output))")
        }
        guard run.status == 0, let line = run.output.split(separator: "\n").last(where: { $0.hasPrefix("JSON ") }) else {
            throw HarnessError("prometheus_client could not parse the exposition (exit \(run.status)):\n\(run.output.suffix(4000))")
        }
        return try JSONDecoder().decode([ParsedFamily].self, from: Data(line.dropFirst(5).utf8))
    }
}
