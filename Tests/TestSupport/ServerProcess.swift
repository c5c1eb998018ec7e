import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A failure of the test harness itself (a missing binary, a server that would
/// not start). Tests surface it as a failure, never as a skip.
package struct TestSupportError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// Finds an executable on `PATH` or in the sbin directories Debian installs
/// servers into. A missing binary is an error that says how to install it.
package func locateBinary(_ name: String, package: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let dirs = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"]
    for dir in dirs {
        let candidate = dir + "/" + name
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw TestSupportError(
        "\(name) not found: install it with `scripts/setup` (or `apt-get install -y \(package)`)")
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that this test
/// process has never handed out before: the kernel picks it by binding port
/// 0. Never twice: a test that kills a server keeps using its port (its
/// clients reconnect, it restarts the server there), so a port freed by a
/// kill must not become another test's server, whose data the first test's
/// clients would then write into. Callers retry their server start if
/// another process takes the port in between.
package func freeLoopbackPort() throws -> UInt16 {
    for _ in 0..<1000 {
        let port = try kernelFreePort()
        if handedOutPorts.withLock({ $0.insert(port).inserted }) { return port }
    }
    throw TestSupportError("no loopback port that was not handed out before")
}

private let handedOutPorts = Mutex(Set<UInt16>())

private func kernelFreePort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0 else { throw TestSupportError("bind() failed: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw TestSupportError("getsockname() failed: errno \(errno)") }
    return UInt16(bigEndian: addr.sin_port)
}

/// A fresh directory under the system temporary directory, named
/// `PREFIX-PID-XXXXXXXX`. It is removed when the test process exits (a
/// failing test puts what it needs of its logs into the failure itself);
/// set `KINDRED_KEEP_TEST_FILES=1` to keep them. The first call also removes
/// the directories of test processes that are gone (killed, crashed), whose
/// exit removed nothing: a full run leaves ~300 MB behind otherwise.
package func makeTemporaryDirectory(prefix: String) throws -> URL {
    let base = URL(fileURLWithPath: NSTemporaryDirectory(), isDirectory: true)
    TemporaryDirectories.shared.prepare(base: base)
    let dir = base.appendingPathComponent("\(prefix)-\(getpid())-\(UUID().uuidString.prefix(8))", isDirectory: true)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    TemporaryDirectories.shared.removeAtExit(dir)
    return dir
}

/// The test process's temporary directories, removed when it exits.
package final class TemporaryDirectories: @unchecked Sendable {
    // @unchecked Sendable: every mutable property is guarded by `lock`.
    static let shared = TemporaryDirectories()
    private let lock = NSLock()
    private var paths: [URL] = []
    private var prepared = false
    private let keep = ProcessInfo.processInfo.environment["KINDRED_KEEP_TEST_FILES"] == "1"

    /// Once per process: kills the servers dead test processes left
    /// running (``ServerRegistry``), then removes what those processes left
    /// in `base`, and arranges for this process's directories to go when it
    /// exits, after its servers are killed.
    ///
    /// A folder's owner is told alive by its pid: test processes in other
    /// pid namespaces that share this /tmp (containers) would look dead.
    /// Run those with a /tmp of their own, or with
    /// `KINDRED_KEEP_TEST_FILES=1`.
    func prepare(base: URL) {
        lock.withLock {
            guard !prepared else { return }
            prepared = true
            guard !keep else { return }
            ServerRegistry.shared.prepare()
            Self.removeOrphans(in: base)
            atexit { TemporaryDirectories.shared.removeAll() }
        }
    }

    /// Removes the directories in `base` whose test process no longer
    /// exists; answers their names.
    @discardableResult
    package static func removeOrphans(in base: URL) -> [String] {
        var removed: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? [] {
            guard let owner = owner(ofDirectoryNamed: name), owner != getpid() else { continue }
            // kill(pid, 0) fails with ESRCH only when no such process exists.
            if Glibc.kill(owner, 0) != 0 && errno == ESRCH,
                (try? FileManager.default.removeItem(at: base.appendingPathComponent(name, isDirectory: true))) != nil
            {
                removed.append(name)
            }
        }
        return removed
    }

    /// The test process that made a directory named `kindred-...-PID-XXXXXXXX`
    /// (``makeTemporaryDirectory(prefix:)``'s names); nil for any other name.
    package static func owner(ofDirectoryNamed name: String) -> Int32? {
        let parts = name.split(separator: "-", omittingEmptySubsequences: false)
        guard name.hasPrefix("kindred-"), parts.count >= 4,
            let token = parts.last, token.count == 8, token.allSatisfy(\.isHexDigit),
            let digits = parts.dropLast().last, !digits.isEmpty, digits.count <= 10, digits.allSatisfy(\.isASCII),
            digits.allSatisfy(\.isNumber), let pid = Int32(digits), pid > 0
        else { return nil }
        return pid
    }

    func removeAtExit(_ url: URL) {
        lock.withLock { paths.append(url) }
    }

    private func removeAll() {
        guard !keep else { return }
        // This handler runs before ServerRegistry's (registered after it):
        // the servers die first, so that none writes into a folder going away.
        ServerRegistry.shared.killAll(timeout: .seconds(2))
        for url in lock.withLock({ paths }) {
            try? FileManager.default.removeItem(at: url)
        }
    }
}

/// Polls `condition` until it holds, for at most `timeout`. This is how tests
/// wait for an event they cannot subscribe to (a server accepting
/// connections, a process exiting): every wait is bounded and a timeout is a
/// failure naming what did not happen.
package func poll(
    until what: String,
    timeout: Duration = .seconds(10),
    interval: Duration = .milliseconds(20),
    _ condition: () throws -> Bool
) throws {
    let clock = ContinuousClock()
    let started = clock.now
    var waited = false  // a condition true at once is no wait
    defer { if waited { expectNotBlockingCooperativePool("poll(until: \(what))", since: started) } }
    let deadline = clock.now.advanced(by: timeout)
    var lastError: (any Error)?
    while clock.now < deadline {
        do {
            if try condition() { return }
        } catch {
            lastError = error
        }
        waited = true
        Thread.sleep(forTimeInterval: Double(interval.components.attoseconds) / 1e18 + Double(interval.components.seconds))
    }
    throw TestSupportError("timed out after \(timeout) waiting for \(what)" + (lastError.map { ": \($0)" } ?? ""))
}

/// The async form of ``poll(until:timeout:interval:_:)``.
package func poll(
    until what: String,
    timeout: Duration = .seconds(10),
    interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    var lastError: (any Error)?
    while clock.now < deadline {
        do {
            if try await condition() { return }
        } catch {
            lastError = error
        }
        try await Task.sleep(for: interval)
    }
    throw TestSupportError("timed out after \(timeout) waiting for \(what)" + (lastError.map { ": \($0)" } ?? ""))
}

/// A server process the tests own. It is registered so that it is killed when
/// the test process exits, and so that a later run kills servers left behind
/// by a test process that crashed.
package final class ServerProcess: @unchecked Sendable {
    // @unchecked Sendable: `process` is only touched under `lock`; the other
    // stored properties are immutable.
    package let name: String
    package let logFile: URL
    private let process: Process
    private let lock = NSLock()

    /// Starts `executable` with `arguments`; stdout and stderr go to
    /// `logFile`. `environment` entries are added to this process's.
    package init(
        name: String, executable: String, arguments: [String], logFile: URL, environment: [String: String] = [:]
    ) throws {
        ServerRegistry.shared.prepare()
        self.name = name
        self.logFile = logFile
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try Self.runWithNoSignalsBlocked(process)
        try? handle.close()
        self.process = process
        ServerRegistry.shared.register(pid: process.processIdentifier)
    }

    /// Starts `process` from a fresh thread whose signal mask is empty.
    ///
    /// The child inherits the signal mask of the thread that spawns it
    /// (Foundation's `Process` does not reset it), and tests run on worker
    /// threads that block most signals: a server started from one of them has
    /// SIGTERM blocked, so `terminate()` waited its whole timeout and then
    /// fell back to SIGKILL, and no server could shut down gracefully.
    private static func runWithNoSignalsBlocked(_ process: Process) throws {
        final class Outcome: @unchecked Sendable {
            // @unchecked Sendable: written by the spawning thread before
            // `done.signal()`, read after `done.wait()`.
            var error: (any Error)?
            let done = DispatchSemaphore(value: 0)
        }
        let outcome = Outcome()
        let thread = Thread {
            var none = sigset_t()
            sigemptyset(&none)
            pthread_sigmask(SIG_SETMASK, &none, nil)
            do { try process.run() } catch { outcome.error = error }
            outcome.done.signal()
        }
        thread.start()
        outcome.done.wait()
        if let error = outcome.error { throw error }
    }

    package var pid: Int32 { process.processIdentifier }

    /// The exit status once the process has exited (`terminationStatus`),
    /// nil while it runs.
    package var exitStatus: Int32? {
        lock.withLock { process.isRunning ? nil : process.terminationStatus }
    }

    package var isRunning: Bool {
        lock.withLock { process.isRunning }
    }

    /// The kernel's state letter for the process (`/proc/PID/stat`: R, S,
    /// T when stopped, Z, ...); nil once it is gone.
    package var state: Character? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        // "pid (comm) S ...": the state follows the last ')' (comm may contain spaces).
        guard let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].first { $0 != " " }
    }

    /// The last lines the server wrote, for failure messages.
    package func logTail(lines: Int = 20) -> String {
        guard let text = try? String(contentsOf: logFile, encoding: .utf8) else { return "" }
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Sends SIGKILL and waits (bounded) for the process to be gone.
    package func kill() {
        signal(SIGKILL)
        waitForExit(timeout: .seconds(10))
    }

    /// Sends SIGKILL and returns at once; a thread of its own waits
    /// (bounded) for the process to be gone, then runs `afterwards` (removing
    /// the server's folder, say). For deinits, which run wherever the last
    /// reference drops, often on the cooperative pool: a wait there holds
    /// one of its two threads, and every async test with it.
    package func killInBackground(afterwards: @escaping @Sendable () -> Void = {}) {
        signal(SIGKILL)
        let thread = Thread { [self] in
            waitForExit(timeout: .seconds(10))
            afterwards()
        }
        thread.name = "kindred-reaper"
        thread.start()
    }

    /// Sends SIGTERM, waits up to `timeout`, then SIGKILL.
    package func terminate(timeout: Duration = .seconds(10)) {
        signal(SIGTERM)
        if !waitForExit(timeout: timeout) {
            kill()
        }
    }

    /// Sends `sig` to the process if it is still running.
    package func signal(_ sig: Int32) {
        lock.withLock {
            if process.isRunning {
                _ = Glibc.kill(process.processIdentifier, sig)
            }
        }
    }

    /// Waits for the process to exit; false when it is still running at the deadline.
    @discardableResult
    package func waitForExit(timeout: Duration) -> Bool {
        let exited = (try? poll(until: "\(name) to exit", timeout: timeout, interval: .milliseconds(5)) {
            !isRunning
        }) != nil
        if exited { ServerRegistry.shared.unregister(pid: pid) }
        return exited
    }

    deinit {
        if process.isRunning {
            _ = Glibc.kill(process.processIdentifier, SIGKILL)
        }
    }
}

/// Tracks every server this test process started, in memory and in a
/// directory under /tmp, so that:
/// - they are killed when the test process exits normally (atexit);
/// - a later test run kills the servers of an earlier process that crashed.
final class ServerRegistry: @unchecked Sendable {
    // @unchecked Sendable: every mutable property is guarded by `lock`.
    static let shared = ServerRegistry()

    private let lock = NSLock()
    private var pids: Set<Int32> = []
    private var prepared = false
    private let root = URL(fileURLWithPath: "/tmp/kindred-test-servers", isDirectory: true)

    private var ownDirectory: URL { root.appendingPathComponent(String(getpid()), isDirectory: true) }

    /// Once per process: ignore SIGPIPE (a pipeline written to a killed server
    /// must be an error, not the death of the test process), reap servers left
    /// by dead test processes, and arrange for ours to die with us.
    /// The leftover servers are gone (or 2 s passed) when this returns, so
    /// their folders can be removed next.
    func prepare() {
        let killed = lock.withLock { () -> [Int32] in
            guard !prepared else { return [] }
            prepared = true
            Glibc.signal(SIGPIPE, SIG_IGN)
            let killed = reapOrphans()
            try? FileManager.default.createDirectory(at: ownDirectory, withIntermediateDirectories: true)
            atexit { ServerRegistry.shared.killAll() }
            return killed
        }
        Self.waitUntilGone(killed, timeout: .seconds(2))
    }

    func register(pid: Int32) {
        lock.withLock {
            pids.insert(pid)
            FileManager.default.createFile(atPath: ownDirectory.appendingPathComponent(String(pid)).path, contents: nil)
        }
    }

    func unregister(pid: Int32) {
        lock.withLock {
            pids.remove(pid)
            try? FileManager.default.removeItem(at: ownDirectory.appendingPathComponent(String(pid)))
        }
    }

    /// Kills every server still registered, once (the set is emptied, so a
    /// second call cannot hit a pid reused meanwhile), and waits up to
    /// `timeout` for them to be gone.
    func killAll(timeout: Duration = .zero) {
        let all = lock.withLock {
            let all = pids
            pids.removeAll()
            return all
        }
        for pid in all { _ = Glibc.kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(at: ownDirectory)
        Self.waitUntilGone(Array(all), timeout: timeout)
    }

    /// Kills servers registered by test processes that no longer exist;
    /// answers their pids.
    private func reapOrphans() -> [Int32] {
        guard let owners = try? FileManager.default.contentsOfDirectory(atPath: root.path) else { return [] }
        var killed: [Int32] = []
        for owner in owners {
            guard let ownerPID = Int32(owner), ownerPID != getpid() else { continue }
            if Glibc.kill(ownerPID, 0) == 0 { continue }  // still alive
            let dir = root.appendingPathComponent(owner)
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] {
                // A pid may have been reused since: only kill what is still a server.
                if let pid = Int32(entry), Self.isServer(pid: pid) {
                    _ = Glibc.kill(pid, SIGKILL)
                    killed.append(pid)
                }
            }
            try? FileManager.default.removeItem(at: dir)
        }
        return killed
    }

    /// Polls until every pid is gone or a zombie (dead, its files closed),
    /// for at most `timeout`.
    static func waitUntilGone(_ pids: [Int32], timeout: Duration) {
        guard !pids.isEmpty, timeout > .zero else { return }
        let deadline = ContinuousClock.now + timeout
        func gone(_ pid: Int32) -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
            // The state follows the command name's closing parenthesis.
            guard let close = stat.lastIndex(of: ")") else { return true }
            return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
        }
        while !pids.allSatisfy(gone) && ContinuousClock.now < deadline {
            usleep(10_000)
        }
    }

    private static func isServer(pid: Int32) -> Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let command = String(decoding: data, as: UTF8.self)
        return command.contains("redis-server") || command.contains("mariadbd") || command.contains("kindred\0worker")
            || command.contains("kindred\0serve") || command.contains("kindred\0backfill") || command.contains("kindred\0evict")
    }
}
