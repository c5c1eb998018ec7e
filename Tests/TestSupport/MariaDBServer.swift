import Foundation
import MariaDBClient

#if canImport(Glibc)
import Glibc
#endif

/// A real `mariadbd` that the tests own: its own datadir in a temporary
/// directory, a free loopback port, a Unix socket, and an application user
/// `kindred` with a random password (holding `@ : / %`, so every connection
/// exercises URL percent-decoding) and all privileges, for both
/// `'kindred'@'127.0.0.1'` (TCP; the server runs with `--skip-name-resolve`)
/// and `'kindred'@'localhost'` (socket).
///
/// Most tests share one server per test process (``shared()``) and isolate
/// themselves with ``createDatabase()``. Tests that kill, pause or restart
/// the server start their own with ``start()``.
///
/// Cost: `mariadb-install-db` runs once per process (1-2 s) into a template
/// datadir; each server copies it (~110 MB, a fraction of a second) and
/// starts in ~0.2 s. A missing binary is a thrown error that says to run
/// `scripts/setup`, never a skip.
package final class MariaDBServer: @unchecked Sendable {
    // @unchecked Sendable: `process`, `currentPort` and `extraArguments` are
    // only touched under `lock`; every other stored property is immutable.

    /// The server's directory: `data/`, `my.sock`, logs.
    package let directory: URL
    /// The Unix socket path.
    package let socketPath: String
    /// The application user.
    package let user = "kindred"
    /// The application user's password.
    package let password: String

    private let lock = NSLock()
    private var process: ServerProcess?
    private var currentPort: UInt16
    private var extraArguments: [String]

    /// The TCP port on 127.0.0.1 (kept across ``restart()``).
    package var port: UInt16 { lock.withLock { currentPort } }

    /// The server's process id while it runs.
    package var pid: Int32? { lock.withLock { process?.isRunning == true ? process?.pid : nil } }

    /// The last lines of the server's error log, for failure messages.
    package var errorLogTail: String {
        let text = (try? String(contentsOf: errorLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(20).joined(separator: "\n")
    }

    private var dataDirectory: URL { directory.appendingPathComponent("data", isDirectory: true) }
    private var errorLog: URL { directory.appendingPathComponent("mariadbd.err") }

    // MARK: - Starting

    /// The process-wide server, started on first use. Every caller gets the
    /// same instance (or the same startup error).
    package static func shared() throws -> MariaDBServer {
        try sharedInstance.get()
    }

    private static let sharedInstance: Result<MariaDBServer, any Error> = Result { try MariaDBServer.start() }

    /// Starts a new server from a copy of the template datadir, on a free
    /// port (retrying with another port when one is taken meanwhile), and
    /// creates the application user.
    package static func start(extraArguments: [String] = []) throws -> MariaDBServer {
        let template = try templateDataDirectory.get()
        let directory = try makeTemporaryDirectory(prefix: "kindred-mariadb")
        try FileManager.default.copyItem(
            at: template, to: directory.appendingPathComponent("data", isDirectory: true))
        let server = MariaDBServer(directory: directory, extraArguments: extraArguments)
        try server.launch(keepingPort: false)
        try server.createApplicationUser()
        return server
    }

    private init(directory: URL, extraArguments: [String]) {
        self.directory = directory
        self.socketPath = directory.appendingPathComponent("my.sock").path
        self.password = Self.randomPassword()
        self.currentPort = 0
        self.extraArguments = extraArguments
    }

    deinit {
        let directory = directory
        let remove: @Sendable () -> Void = { try? FileManager.default.removeItem(at: directory) }
        if let process { process.killInBackground(afterwards: remove) } else { remove() }
    }

    // MARK: - Connecting

    /// A configuration for the application user, over TCP or the socket.
    /// The read timeout bounds every test's wait on a server that stops answering.
    package func configuration(
        database: String? = nil, overSocket: Bool = false, readTimeout: Duration = .seconds(30)
    ) -> MariaDBConnection.Configuration {
        if overSocket {
            return MariaDBConnection.Configuration(
                socketPath: socketPath, user: user, password: password, database: database,
                connectTimeout: .seconds(5), readTimeout: readTimeout, writeTimeout: .seconds(30))
        }
        return MariaDBConnection.Configuration(
            host: "127.0.0.1", port: Int(port), user: user, password: password, database: database,
            connectTimeout: .seconds(5), readTimeout: readTimeout, writeTimeout: .seconds(30))
    }

    /// The same as a `mysql://` URL (password percent-encoded).
    package func url(database: String? = nil, overSocket: Bool = false) -> String {
        configuration(database: database, overSocket: overSocket).url
    }

    /// A new connection as the application user.
    package func connect(
        database: String? = nil, overSocket: Bool = false, readTimeout: Duration = .seconds(30)
    ) throws -> MariaDBConnection {
        try MariaDBConnection(
            configuration: configuration(database: database, overSocket: overSocket, readTimeout: readTimeout))
    }

    /// Creates an empty utf8mb4 database with a name no other test uses, and
    /// returns the name.
    package func createDatabase() throws -> String {
        let name = "kt_\(Self.databaseCounter.next())_\(UUID().uuidString.prefix(8).lowercased())"
        let connection = try connect(overSocket: true)
        defer { connection.close() }
        try connection.execute("CREATE DATABASE `\(name)` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        return name
    }

    // MARK: - Failures on demand

    /// SIGKILL, as a crash or an OOM kill would: open connections see EOF.
    package func kill() {
        lock.withLock { process }?.kill()
    }

    /// SIGTERM: a clean shutdown (~2 s), waited for (bounded).
    package func stop() {
        guard let process = lock.withLock({ process }) else { return }
        process.signal(SIGTERM)
        process.signal(SIGCONT)  // a paused server handles SIGTERM only once resumed
        process.terminate(timeout: .seconds(20))
    }

    /// SIGSTOP: the server stops answering but keeps its connections open,
    /// as a hung host would. Clients wait until their read timeout. Returns
    /// once the kernel reports the process stopped (signal delivery is
    /// asynchronous: a request sent right after `kill` could still be served).
    package func pause() throws {
        guard let process = lock.withLock({ process }) else { return }
        process.signal(SIGSTOP)
        try poll(until: "mariadbd to stop (SIGSTOP)", timeout: .seconds(10), interval: .milliseconds(2)) {
            process.state == "T"
        }
    }

    /// SIGCONT after ``pause()``; returns once the process runs again.
    package func resume() throws {
        guard let process = lock.withLock({ process }) else { return }
        process.signal(SIGCONT)
        try poll(until: "mariadbd to continue (SIGCONT)", timeout: .seconds(10), interval: .milliseconds(2)) {
            !process.isRunning || process.state != "T"
        }
    }

    /// Starts the server again on the same port and datadir (data kept),
    /// stopping it first if it still runs. Waits until it accepts connections.
    /// `extraArguments`, when given, replace the ones it was started with
    /// (e.g. to take TLS away from clients already configured for it).
    package func restart(extraArguments: [String]? = nil) throws {
        if let process = lock.withLock({ process }), process.isRunning {
            stop()
        }
        if let extraArguments { lock.withLock { self.extraArguments = extraArguments } }
        try launch(keepingPort: true)
    }

    // MARK: - Process management

    private func launch(keepingPort: Bool) throws {
        let mariadbd = try locateBinary("mariadbd", package: "mariadb-server")
        let attempts = keepingPort ? 1 : 5
        var lastFailure = ""
        for _ in 0..<attempts {
            let port = keepingPort ? self.port : try freeLoopbackPort()
            let logOffset = (try? FileManager.default.attributesOfItem(atPath: errorLog.path)[.size] as? Int) ?? 0
            let process = try ServerProcess(
                name: "mariadbd", executable: mariadbd,
                arguments: [
                    "--no-defaults", "--user=root", "--datadir=\(dataDirectory.path)", "--socket=\(socketPath)",
                    "--port=\(port)", "--bind-address=127.0.0.1",
                    "--pid-file=\(directory.appendingPathComponent("mariadbd.pid").path)",
                    "--log-error=\(errorLog.path)", "--skip-name-resolve",
                ] + lock.withLock { extraArguments },
                logFile: directory.appendingPathComponent("mariadbd.out"))

            var exited = false
            do {
                try poll(until: "mariadbd on port \(port) to accept connections", timeout: .seconds(30)) {
                    if !process.isRunning {
                        exited = true
                        return true
                    }
                    return rootCanConnect()
                }
            } catch {
                process.kill()
                throw TestSupportError("\(error)\nmariadbd error log:\n\(errorLogTail)")
            }
            if !exited {
                lock.withLock {
                    self.process = process
                    self.currentPort = port
                }
                return
            }
            process.waitForExit(timeout: .seconds(5))
            lastFailure = logSince(offset: logOffset)
            let portTaken = lastFailure.contains("Address already in use") || lastFailure.contains("Can't start server: Bind")
            if !portTaken || keepingPort { break }
        }
        throw TestSupportError("mariadbd did not start:\n\(lastFailure)")
    }

    /// Whether root can log in over the socket: the server is ready.
    private func rootCanConnect() -> Bool {
        guard let connection = try? rootConnection() else { return false }
        connection.close()
        return true
    }

    private func rootConnection() throws -> MariaDBConnection {
        try MariaDBConnection(
            configuration: .init(
                socketPath: socketPath, user: "root", password: "", connectTimeout: .seconds(2),
                readTimeout: .seconds(10), writeTimeout: .seconds(10)))
    }

    private func createApplicationUser() throws {
        let root = try rootConnection()
        defer { root.close() }
        for host in ["127.0.0.1", "localhost"] {
            try root.execute("CREATE USER '\(user)'@'\(host)' IDENTIFIED BY '\(password)'")
            try root.execute("GRANT ALL PRIVILEGES ON *.* TO '\(user)'@'\(host)' WITH GRANT OPTION")
        }
    }

    private func logSince(offset: Int) -> String {
        guard let data = FileManager.default.contents(atPath: errorLog.path), data.count >= offset else { return "" }
        return String(decoding: data[offset...], as: UTF8.self)
    }

    // MARK: - Template datadir

    /// `mariadb-install-db` once per process; servers copy the result.
    private static let templateDataDirectory: Result<URL, any Error> = Result {
        let installer = try locateBinary("mariadb-install-db", package: "mariadb-server")
        _ = try locateBinary("mariadbd", package: "mariadb-server")
        let directory = try makeTemporaryDirectory(prefix: "kindred-mariadb-template")
        let data = directory.appendingPathComponent("data", isDirectory: true)
        let log = directory.appendingPathComponent("install.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: installer)
        process.arguments = [
            "--no-defaults", "--datadir=\(data.path)", "--user=root",
            "--auth-root-authentication-method=normal", "--skip-test-db",
        ]
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        do {
            try poll(until: "mariadb-install-db to finish", timeout: .seconds(120), interval: .milliseconds(20)) {
                !process.isRunning
            }
        } catch {
            process.terminate()
            throw error
        }
        guard process.terminationStatus == 0 else {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw TestSupportError("mariadb-install-db failed (\(process.terminationStatus)):\n\(output)")
        }
        return data
    }

    // MARK: - Names

    private static let databaseCounter = Counter()

    /// 20 random letters and digits plus `@ : / % # ?`, shuffled: every
    /// character a URL parser could trip on, none that a SQL string literal
    /// would need escaped.
    private static func randomPassword() -> String {
        let letters = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        let characters = (0..<20).map { _ in letters.randomElement()! } + Array("@:/%#?")
        return String(characters.shuffled())
    }
}

