import Foundation
import RedisClient

/// A real `redis-server` that a test owns: started on a free loopback port in
/// a fresh temporary directory, registered so it dies with the test process,
/// and ready (it answered `PING`) when the initializer returns.
///
/// A missing `redis-server` binary is a thrown ``TestSupportError`` saying to
/// run `scripts/setup`: tests fail, they never skip.
///
/// Started as `redis-server --bind 127.0.0.1 --port P --dir DIR/data
/// --appendonly no --save ''` plus ``Options/config``; with
/// ``Options/saveOnShutdown`` the `--save` rule is kept, so a SIGTERM
/// (``stop()``) writes `dump.rdb` and ``restart(empty:)`` with `empty: false`
/// brings the data back.
package final class RedisServer: @unchecked Sendable {
    // @unchecked Sendable: `process` and `starts` are only read or written
    // while holding `lock`; every other stored property is a `let` of a
    // Sendable type.

    /// How to start the server.
    package struct Options: Sendable {
        /// Keep an RDB save rule (`save 3600 1`), so that a graceful stop
        /// persists the data. Off by default: tests start empty and fast.
        package var saveOnShutdown: Bool
        /// Extra configuration, passed as `--name value` (for example
        /// `["hash-max-listpack-entries": "1024", "busy-reply-threshold": "50"]`).
        package var config: [String: String]
        /// The default user's password (`--requirepass`): every client,
        /// the readiness check included, must `AUTH` first.
        package var password: String?

        package init(saveOnShutdown: Bool = false, config: [String: String] = [:], password: String? = nil) {
            self.saveOnShutdown = saveOnShutdown
            self.config = config
            self.password = password
        }
    }

    package let host = "127.0.0.1"
    package let port: UInt16
    /// The temporary directory holding `data/` (the server's `--dir`) and the logs.
    package let directory: URL
    package let options: Options

    private let binary: String
    private let lock = NSLock()
    private var process: ServerProcess
    private var starts = 1

    /// Starts a server and waits (bounded) until it answers `PING`. When the
    /// chosen port is taken between picking it and binding it, tries another,
    /// up to 5 times.
    package init(options: Options = Options()) throws {
        binary = try locateBinary("redis-server", package: "redis-server")
        directory = try makeTemporaryDirectory(prefix: "kindred-redis")
        self.options = options
        try FileManager.default.createDirectory(at: Self.dataDirectory(in: directory), withIntermediateDirectories: true)
        var attempt = 0
        while true {
            attempt += 1
            let port = try freeLoopbackPort()
            do {
                process = try Self.launch(binary: binary, port: port, directory: directory, options: options, start: 1)
                self.port = port
                return
            } catch let error as PortInUse {
                if attempt >= 5 {
                    throw TestSupportError("redis-server found its port taken 5 times in a row; last: \(error.port)")
                }
            }
        }
    }

    deinit {
        let directory = directory
        process.killInBackground { try? FileManager.default.removeItem(at: directory) }
    }

    /// `redis://127.0.0.1:P`, or `redis://:PASSWORD@127.0.0.1:P` (percent-encoded)
    /// when the server has a password.
    package var url: String { redisURL().urlIncludingPassword }

    /// This server's URL, with the server's password unless another user
    /// and password are given, and database `database`.
    package func redisURL(user: String? = nil, password: String? = nil, database: Int = 0) -> RedisURL {
        RedisURL(host: host, port: Int(port), user: user, password: password ?? options.password, database: database)
    }

    /// The server's `--dir`, where `dump.rdb` goes.
    package var dataDirectory: URL { Self.dataDirectory(in: directory) }

    /// A connection configuration for this server: short timeouts that still
    /// leave room on a loaded 2-core machine.
    package func configuration(
        readTimeout: Duration? = .seconds(10),
        retry: RedisRetryPolicy = .default
    ) -> RedisConnection.Configuration {
        RedisConnection.Configuration(
            host: host, port: Int(port), password: options.password, connectTimeout: .seconds(2),
            readTimeout: readTimeout, retry: retry)
    }

    /// Opens a connection to this server.
    package func connect(readTimeout: Duration? = .seconds(10), retry: RedisRetryPolicy = .default) throws -> RedisConnection {
        try RedisConnection(configuration: configuration(readTimeout: readTimeout, retry: retry))
    }

    /// True while the server process runs.
    package var isRunning: Bool { lock.withLock { process.isRunning } }

    /// Kills the server with SIGKILL and waits (bounded) until it is gone:
    /// its clients see their connections reset, nothing is saved.
    package func kill() {
        lock.withLock { process }.kill()
    }

    /// Freezes the server (SIGSTOP): the kernel still accepts connections
    /// and takes commands, but nothing answers, as with a hung host.
    package func freeze() {
        lock.withLock { process }.signal(SIGSTOP)
    }

    /// Whether the kernel reports the server stopped: ``freeze()`` signals,
    /// and a signal is delivered asynchronously.
    package var isFrozen: Bool { lock.withLock { process }.state == "T" }

    /// Thaws a frozen server (SIGCONT): it answers what it was sent meanwhile.
    package func thaw() {
        lock.withLock { process }.signal(SIGCONT)
    }

    /// Stops the server with SIGTERM (a graceful shutdown, which saves the
    /// data when ``Options/saveOnShutdown`` is set) and waits for it to exit.
    package func stop() {
        lock.withLock { process }.terminate()
    }

    /// Starts the server again on the same port, stopping it first (SIGTERM)
    /// if it runs. With `empty`, the data directory is wiped first, so the
    /// server comes back without data whatever it saved. Waits until it
    /// answers `PING`.
    package func restart(empty: Bool) throws {
        try lock.withLock {
            process.terminate()
            if empty {
                let data = dataDirectory
                for entry in (try? FileManager.default.contentsOfDirectory(atPath: data.path)) ?? [] {
                    try FileManager.default.removeItem(at: data.appendingPathComponent(entry))
                }
            }
            starts += 1
            do {
                process = try Self.launch(binary: binary, port: port, directory: directory, options: options, start: starts)
            } catch let error as PortInUse {
                throw TestSupportError("cannot restart redis-server: port \(error.port) was taken meanwhile")
            }
        }
    }

    /// The last lines of the current server's log, for failure messages.
    package func logTail(lines: Int = 20) -> String {
        lock.withLock { process }.logTail(lines: lines)
    }

    // MARK: Starting

    private struct PortInUse: Error {
        let port: UInt16
    }

    private static func dataDirectory(in directory: URL) -> URL {
        directory.appendingPathComponent("data", isDirectory: true)
    }

    private static func launch(binary: String, port: UInt16, directory: URL, options: Options, start: Int) throws -> ServerProcess {
        var arguments = [
            "--bind", "127.0.0.1",
            "--port", String(port),
            "--dir", dataDirectory(in: directory).path,
            "--appendonly", "no",
            "--save", options.saveOnShutdown ? "3600 1" : "",
            "--daemonize", "no",
        ]
        for (name, value) in options.config.sorted(by: { $0.key < $1.key }) {
            arguments += ["--" + name, value]
        }
        if let password = options.password { arguments += ["--requirepass", password] }
        let process = try ServerProcess(
            name: "redis-server:\(port)",
            executable: binary,
            arguments: arguments,
            logFile: directory.appendingPathComponent("redis-\(start).log"))
        do {
            try poll(until: "redis-server on port \(port) to answer PING") {
                !process.isRunning || answersPing(port: port, password: options.password)
            }
        } catch {
            process.kill()
            throw TestSupportError("\(error)\n--- redis-server log ---\n\(process.logTail())")
        }
        if !process.isRunning {
            process.waitForExit(timeout: .seconds(1))
            let log = process.logTail()
            if log.contains("Address already in use") { throw PortInUse(port: port) }
            throw TestSupportError("redis-server on port \(port) exited at start\n--- redis-server log ---\n\(log)")
        }
        return process
    }

    /// One short-lived connection: true when the server answers `+PONG` (not
    /// `-LOADING`).
    private static func answersPing(port: UInt16, password: String?) -> Bool {
        let configuration = RedisConnection.Configuration(
            host: "127.0.0.1", port: Int(port), password: password,
            connectTimeout: .milliseconds(500), readTimeout: .seconds(2), keepAlive: false, retry: .none)
        guard let connection = try? RedisConnection(configuration: configuration) else { return false }
        defer { connection.close() }
        return (try? connection.send(["PING"])) == .status("PONG")
    }
}
