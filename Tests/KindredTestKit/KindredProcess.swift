import Foundation
import TestSupport

/// The `kindred` executable as the tests run it: found next to the test
/// bundle, started on an installation.
enum KindredProcess {
    /// The `kindred` executable built next to the test bundle.
    static func binary() throws -> String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundle.appendingPathComponent("kindred"), bundle.deletingLastPathComponent().appendingPathComponent("kindred")]
        where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate.path
        }
        throw TestSupportError("the kindred executable is not built next to \(bundle.path): run `swift build --build-tests` first")
    }

    /// Starts `kindred worker` on the installation.
    static func startWorker(
        _ installation: Installation, name: String = "worker", workers: Int = 2, environment extra: [String: String] = [:]
    ) throws -> ServerProcess {
        let log = try makeTemporaryDirectory(prefix: "kindred-worker").appendingPathComponent("\(name).log")
        return try ServerProcess(
            name: name, executable: try binary(),
            arguments: ["worker", "--workers", String(workers), "--metrics", "off", "--shutdown-timeout", "10", "--log-level", "info"],
            logFile: log, environment: installation.environment.merging(extra) { _, new in new })
    }

    /// Waits (bounded) until at least `count` members have a current generation.
    static func waitForGenerated(_ installation: Installation, atLeast count: Int, worker: ServerProcess?, timeout: Duration = .seconds(180)) throws {
        try poll(until: "\(count) members generated", timeout: timeout, interval: .milliseconds(100)) {
            if let worker, !worker.isRunning {
                throw TestSupportError("the worker exited: \(worker.logTail())")
            }
            return try installation.generatedCount() >= count
        }
    }
}
