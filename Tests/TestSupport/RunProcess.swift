import Foundation

/// Runs a program to completion in a temporary directory of its own (its
/// working directory, where it may leave caches), with its output (stdout
/// and stderr together) in a file there, and returns its status and that
/// output. `input` becomes its standard input (else `/dev/null`);
/// `environment` entries are added to this process's. Past `timeout` it is
/// terminated (killed 10 s later) and the run is an error carrying its
/// output so far.
package func runProcess(
    _ executable: String, _ arguments: [String], environment extra: [String: String] = [:], input: String? = nil,
    timeout: Duration
) throws -> (status: Int32, output: String) {
    let started = ContinuousClock.now
    defer { expectNotBlockingCooperativePool("runProcess(\(executable))", since: started) }
    let directory = try makeTemporaryDirectory(prefix: "kindred-run")
    defer { try? FileManager.default.removeItem(at: directory) }
    let outputURL = directory.appendingPathComponent("output.txt")
    guard FileManager.default.createFile(atPath: outputURL.path, contents: nil) else {
        throw TestSupportError("cannot create \(outputURL.path)")
    }
    let output = try FileHandle(forWritingTo: outputURL)
    defer { try? output.close() }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = directory
    if !extra.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
    }
    process.standardOutput = output
    process.standardError = output
    if let input {
        let inputURL = directory.appendingPathComponent("input.txt")
        guard FileManager.default.createFile(atPath: inputURL.path, contents: Data(input.utf8)) else {
            throw TestSupportError("cannot create \(inputURL.path)")
        }
        process.standardInput = try FileHandle(forReadingFrom: inputURL)
    } else {
        process.standardInput = FileHandle.nullDevice
    }
    let exited = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in exited.signal() }
    try process.run()
    let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
    if exited.wait(timeout: .now() + seconds) == .timedOut {
        process.terminate()
        if exited.wait(timeout: .now() + 10) == .timedOut { kill(process.processIdentifier, SIGKILL) }
        let text = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        throw TestSupportError("\(executable) did not finish within \(timeout); its output:\n\(text.suffix(20_000))")
    }
    return (process.terminationStatus, (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "")
}
