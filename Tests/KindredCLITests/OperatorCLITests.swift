import Foundation
@testable import KindredTestKit
import MariaDBClient
@_spi(Testing) import MemberStore
import RedisClient
import Scoring
import Testing
import TestSupport
import WorkQueue

/// The operator's view of `kindred` as a real process: log formats, refused
/// settings, errors that say what to do, `--json` documents, dead jobs,
/// an interrupted import, help texts. Serialized: processes and servers of
/// their own on two cores.
@Suite("Operator CLI", .serialized, .timeLimit(.minutes(10)), .offCooperativePool)
struct OperatorCLITests {
    /// Runs `kindred ARGUMENTS` to its end (bounded): exit status and output
    /// (standard output and error together).
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(120)) throws
        -> (status: Int32, output: String)
    {
        let process = try start(arguments, environment: environment, name: arguments.prefix(2).joined(separator: "-"))
        guard process.waitForExit(timeout: timeout) else {
            process.kill()
            throw TestSupportError("kindred \(arguments) did not finish within \(timeout): \(process.logTail())")
        }
        return (process.exitStatus ?? -1, (try? String(contentsOf: process.logFile, encoding: .utf8)) ?? "")
    }

    static func start(_ arguments: [String], environment: [String: String], name: String) throws -> ServerProcess {
        let log = try makeTemporaryDirectory(prefix: "kindred-cli").appendingPathComponent("\(name).log")
        return try ServerProcess(
            name: name, executable: try WorkerChecks.binary(), arguments: arguments, logFile: log, environment: environment)
    }

    static func json(_ line: some StringProtocol) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
    }

    @Test("--version prints the version")
    func version() throws {
        let (status, output) = try Self.run(["--version"])
        #expect(status == 0)
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "0.9.0")
    }

    @Test("an unknown log level or format is refused naming the valid ones, from a flag, the environment or the file")
    func refusedLogSettings() throws {
        let flag = try Self.run(["worker", "--log-level", "loud"])
        #expect(flag.status != 0)
        #expect(flag.output.contains("unknown log level \"loud\"; use one of trace, debug, info, notice, warning, error, critical"), "\(flag.output)")
        let format = try Self.run(["backfill", "--all", "--log-format", "xml"])
        #expect(format.status != 0 && format.output.contains("--log-format: unknown log format \"xml\"; use text or json"), "\(format.output)")
        let importing = try Self.run(["import", "--survey", "s.json", "--members", "m.jsonl", "--log-format", "yaml"])
        #expect(importing.status != 0 && importing.output.contains("--log-format: unknown log format \"yaml\""), "\(importing.output)")
        let environment = try Self.run(["worker"], environment: ["KINDRED_LOG_LEVEL": "loud"])
        #expect(environment.status == 1)
        #expect(environment.output.contains("Error: KINDRED_LOG_LEVEL: unknown log level \"loud\"; use one of trace,"), "\(environment.output)")
        let directory = try makeTemporaryDirectory(prefix: "kindred-cli-config")
        let file = directory.appendingPathComponent("kindred.json").path
        try Data("{\"log_format\": \"yaml\"}".utf8).write(to: URL(fileURLWithPath: file))
        let fromFile = try Self.run(["serve", "--config", file])
        #expect(fromFile.output.contains("Error: \"log_format\" in \(file): unknown log format \"yaml\"; use text or json"), "\(fromFile.output)")
    }

    @Test("a config file with an unknown key or bad JSON is refused with the position and the suggestion")
    func strictConfigFile() throws {
        let directory = try makeTemporaryDirectory(prefix: "kindred-cli-config")
        let file = directory.appendingPathComponent("kindred.json").path
        try Data("{\n  \"queu\": \"redis://127.0.0.1:1\"\n}\n".utf8).write(to: URL(fileURLWithPath: file))
        let unknown = try Self.run(["status", "--config", file])
        #expect(unknown.status == 1)
        #expect(unknown.output.contains("Error: unknown key \"queu\" in \(file) (line 2, column 3); did you mean \"queue\"?"), "\(unknown.output)")
        try Data("{\"queue\": \"redis://127.0.0.1:1\",}".utf8).write(to: URL(fileURLWithPath: file))
        let comma = try Self.run(["queue", "stats"], environment: ["KINDRED_CONFIG": file])
        #expect(comma.output.contains("Error: \(file) is not valid JSON: line 1, column 33: expected a key in quotes (a trailing comma)"), "\(comma.output)")
    }

    @Test("worker logs in JSON: every line is an object with time, level, logger, message and metadata; durations in ms")
    func jsonLogs() throws {
        let installation = try Installation(memberLimit: 200)
        let worker = try Self.start(
            ["worker", "--workers", "1", "--metrics", "off", "--log-format", "json", "--log-level", "debug"],
            environment: installation.environment, name: "worker-json")
        defer { worker.terminate() }
        try installation.enqueueAll()
        try WorkerChecks.waitForGenerated(installation, atLeast: 200, worker: worker)
        worker.signal(SIGTERM)
        #expect(worker.waitForExit(timeout: .seconds(30)))
        let lines = try String(contentsOf: worker.logFile, encoding: .utf8).split(separator: "\n")
        var messages: [String: [String: Any]] = [:]
        for line in lines {
            let object = try Self.json(line)
            let time = try #require(object["time"] as? String)
            #expect(time.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(time)")
            #expect(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(object["level"] as? String ?? ""))
            #expect((object["logger"] as? String)?.isEmpty == false)
            let message = try #require(object["message"] as? String)
            messages[message] = try #require(object["metadata"] as? [String: Any])
        }
        let snapshot = try #require(messages["snapshot loaded"], "\(messages.keys)")
        #expect(snapshot["took_ms"] is NSNumber, "took_ms is a number: \(snapshot)")
        #expect(messages["worker starting"] != nil && messages["worker stopped"] != nil, "\(messages.keys)")
        let generated = try #require(messages["generated"], "debug lines of generated sets")
        #expect(generated["took_ms"] is NSNumber && generated["member"] != nil)
        let all = lines.joined(separator: "\n")
        #expect(!all.contains(" seconds"), "no Swift Duration descriptions")
        #expect(!all.contains("\"answers\""), "no member answers in logs")
    }

    @Test("text logs are logfmt: time, level, logger, msg, then key=value pairs")
    func textLogs() throws {
        let installation = try Installation(memberLimit: 50)
        let worker = try Self.start(["worker", "--workers", "1", "--metrics", "off"], environment: installation.environment, name: "worker-text")
        defer { worker.terminate() }
        try poll(until: "the worker to start", timeout: .seconds(60), interval: .milliseconds(20)) {
            guard worker.isRunning else { throw TestSupportError("the worker exited: \(worker.logTail())") }
            return worker.logTail(lines: 50).contains("msg=\"worker starting\"")
        }
        let line = try #require(worker.logTail(lines: 50).split(separator: "\n").first { $0.contains("msg=\"snapshot loaded\"") })
        #expect(line.wholeMatch(of: /time=\S+Z level=info logger=kindred\.worker msg="snapshot loaded" invalid=0 members=50 took_ms=\d+\.\d/) != nil, "\(line)")
    }

    @Test("MySQL errors say what to do and name KINDRED_MYSQL with host:port, never the password")
    func mysqlErrors() throws {
        let mysql = try MariaDBServer.shared()
        let queue = try RedisServer()
        let database = try mysql.createDatabase()
        let environment = ["KINDRED_MYSQL": mysql.url(database: database), "KINDRED_QUEUE": "redis://127.0.0.1:\(queue.port)"]
        let missing = try Self.run(["status"], environment: environment)
        #expect(missing.status == 1)
        #expect(missing.output.contains("Error: the schema is missing: run `kindred migrate`"), "\(missing.output)")
        #expect(!missing.output.contains("SELECT") && !missing.output.contains("MariaDBError"), "\(missing.output)")

        let secret = "wrong-\(UUID().uuidString.prefix(8))"
        let wrong = MariaDBConnection.Configuration(
            host: "127.0.0.1", port: Int(mysql.port), user: mysql.user, password: secret, database: database).url
        let denied = try Self.run(["status"], environment: environment.merging(["KINDRED_MYSQL": wrong]) { $1 })
        #expect(denied.status == 1)
        #expect(denied.output.contains("Error: access denied for user kindred at 127.0.0.1:\(mysql.port) (KINDRED_MYSQL)"), "\(denied.output)")
        #expect(!denied.output.contains(secret) && !denied.output.contains(mysql.password), "no password in \(denied.output)")
        let migrateDenied = try Self.run(["migrate"], environment: ["KINDRED_MYSQL": wrong])
        #expect(migrateDenied.output.contains("Error: access denied for user kindred at 127.0.0.1:\(mysql.port) (KINDRED_MYSQL)"), "\(migrateDenied.output)")
        #expect(!migrateDenied.output.contains(secret))

        let closed = try freeLoopbackPort()
        let refusedURL = MariaDBConnection.Configuration(
            host: "127.0.0.1", port: Int(closed), user: mysql.user, password: secret, database: database).url
        let refused = try Self.run(["status"], environment: environment.merging(["KINDRED_MYSQL": refusedURL]) { $1 })
        #expect(refused.output.contains("Error: cannot connect to MySQL at 127.0.0.1:\(closed) (KINDRED_MYSQL): connection refused"), "\(refused.output)")
        #expect(!refused.output.contains(secret))
    }

    @Test("MySQL and TLS: a login refused for want of TLS says so; REQUIRED and VERIFY_CA refuse a server without TLS; a bad URL prints its reason, no part of the password")
    func mysqlTLSErrors() throws {
        let certificates = try TestCertificates()
        let secure = try MariaDBServer.start(extraArguments: certificates.mariadbArguments + ["--require-secure-transport=ON"])
        let plain = try Self.run(["migrate"], environment: ["KINDRED_MYSQL": secure.url()])
        #expect(plain.status == 1)
        #expect(plain.output.contains(
            "Error: access denied for user kindred at 127.0.0.1:\(secure.port) (KINDRED_MYSQL): check the user and password, "
                + "or the server requires TLS: add ?ssl-mode=VERIFY_CA&ssl-ca=PATH to KINDRED_MYSQL"), "\(plain.output)")
        #expect(!plain.output.contains(secure.password))
        // Over TLS a wrong password is only that: no TLS hint.
        var wrong = secure.configuration()
        wrong.password = "wrong-\(UUID().uuidString.prefix(8))"
        wrong.tls = .init(mode: .verifyCA, ca: certificates.caCertificate)
        let denied = try Self.run(["migrate"], environment: ["KINDRED_MYSQL": wrong.url])
        #expect(denied.output.contains("(KINDRED_MYSQL): check the user and password"), "\(denied.output)")
        #expect(!denied.output.contains(wrong.password) && !denied.output.contains("requires TLS"), "\(denied.output)")

        // The shared server offers no TLS: the modes that promise it refuse it.
        let mysql = try MariaDBServer.shared()
        let database = try mysql.createDatabase()
        for tls in [MariaDBConnection.Configuration.TLS(mode: .required), .init(mode: .verifyCA, ca: certificates.caCertificate)] {
            var configuration = mysql.configuration(database: database)
            configuration.tls = tls
            let refused = try Self.run(["migrate"], environment: ["KINDRED_MYSQL": configuration.url])
            #expect(refused.status == 1)
            #expect(refused.output.contains(
                "the server at 127.0.0.1:\(mysql.port) did not use TLS although ssl-mode=\(tls.mode.rawValue)"), "\(refused.output)")
            #expect(!refused.output.contains(mysql.password) && !refused.output.contains("applied"), "\(refused.output)")
        }
        let connection = try mysql.connect(database: database)
        defer { connection.close() }
        #expect(try connection.query("SHOW TABLES").isEmpty, "nothing was sent over the plain-text sessions")

        // A password with an unencoded '?': refused by migrate (which hands the URL on) and by
        // status (which parses it first), with the reason only.
        for command in [["migrate"], ["status"]] {
            let bad = try Self.run(command, environment: ["KINDRED_MYSQL": "mysql://u:p@ss?word@127.0.0.1/k"])
            #expect(bad.status == 1)
            #expect(bad.output.contains("Error: KINDRED_MYSQL: invalid MySQL URL: '@' after the host: the password must be percent-encoded"),
                    "\(bad.output)")
            #expect(!bad.output.contains("word@") && !bad.output.contains("'word") && !bad.output.contains("MariaDBError"), "\(bad.output)")
        }
    }

    @Test("a queue that cannot be reached is named with KINDRED_QUEUE and its address")
    func queueRefused() throws {
        let closed = try freeLoopbackPort()
        let (status, output) = try Self.run(["queue", "stats"], environment: ["KINDRED_QUEUE": "redis://127.0.0.1:\(closed)"])
        #expect(status == 1)
        #expect(output.contains("Error: cannot connect to the queue at 127.0.0.1:\(closed) (KINDRED_QUEUE): connection refused"), "\(output)")
        #expect(!output.contains("RedisError"), "\(output)")
    }

    @Test("a shard that is down is named by id and address, pointing at `kindred shards list`")
    func shardDown() throws {
        let installation = try Installation(memberLimit: 20)
        let member = installation.members[0].id
        let directory = SessionDirectory(try installation.connectMySQL())
        let shard = try directory.assign(member)
        let index = try #require(installation.shardIDs.firstIndex(of: shard))
        let port = installation.shards[index].port
        installation.shards[index].stop()
        let (status, output) = try Self.run(["matches", String(member)], environment: installation.environment)
        #expect(status == 1)
        #expect(output.contains("Error: cannot connect to shard \(shard) at 127.0.0.1:\(port) (see `kindred shards list`): connection refused"), "\(output)")
        #expect(!output.contains("ScoreStoreError") && !output.contains("RedisError"), "\(output)")
    }

    @Test("serve and the worker's metrics on a port already in use: the address and the setting")
    func portInUse() throws {
        let installation = try Installation(memberLimit: 20)
        let taken = installation.queueServer.port
        var environment = installation.environment
        environment["KINDRED_API_TOKEN"] = "0123456789abcdef0123"
        environment["KINDRED_LISTEN"] = "127.0.0.1:\(taken)"
        let serve = try Self.run(["serve"], environment: environment)
        #expect(serve.status == 1)
        #expect(serve.output.contains("Error: cannot listen on 127.0.0.1:\(taken) (KINDRED_LISTEN): the address is already in use"), "\(serve.output)")
        let worker = try Self.run(["worker", "--workers", "1"], environment: installation.environment.merging(["KINDRED_METRICS": "127.0.0.1:\(taken)"]) { $1 })
        #expect(worker.status == 1)
        #expect(worker.output.contains("Error: cannot listen on 127.0.0.1:\(taken) (KINDRED_METRICS): the address is already in use"), "\(worker.output)")
    }

    @Test("status, queue stats and queue dead print stable JSON; dead jobs are deleted by id or all")
    func jsonAndDeadJobs() throws {
        let installation = try Installation(memberLimit: 30)
        let redis = try installation.queueServer.connect()
        let queue = WorkQueue()
        try queue.enqueue([3, 4, 5], priority: .repair, on: QueueConnection(redis))
        for _ in 0..<3 {
            let job = try #require(try queue.fetch(worker: "w1", on: QueueConnection(redis)))
            _ = try queue.bury(job, worker: "w1", reason: "stored member breaks the rules: age", on: QueueConnection(redis))
        }
        try queue.enqueue([7], priority: .backfill, on: QueueConnection(redis))

        let status = try Self.run(["status", "--json"], environment: installation.environment)
        #expect(status.status == 0, "\(status.output)")
        let document = try Self.json(status.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(document["members"] as? [String: Int] == ["live": 30, "deleted": 0])
        #expect(document["sets"] as? [String: Int] == ["current": 0, "stale": 0, "missing": 30])
        let queueObject = try #require(document["queue"] as? [String: Any])
        #expect(queueObject["waiting"] as? [String: Int] == ["interactive": 0, "repair": 0, "backfill": 1])
        #expect(queueObject["dead"] as? Int == 3 && queueObject["processing"] as? Int == 0)

        let stats = try Self.run(["queue", "stats", "--json"], environment: installation.environment)
        let statsObject = try Self.json(stats.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(Set(statsObject.keys) == ["waiting", "delayed", "processing", "oldest_processing_ms", "dead", "workers"])

        let dead = try Self.run(["queue", "dead", "--json"], environment: installation.environment)
        let entries = try #require(try Self.json(dead.output.trimmingCharacters(in: .whitespacesAndNewlines))["dead"] as? [[String: Any]])
        #expect(entries.compactMap { $0["member"] as? Int }.sorted() == [3, 4, 5])
        #expect(entries.allSatisfy {
            $0["priority"] as? String == "repair" && $0["attempts"] as? Int == 1
                && ($0["died_at"] as? String)?.hasSuffix("Z") == true && $0["reason"] as? String == "stored member breaks the rules: age"
        })

        let one = try Self.run(["queue", "dead", "--delete", "4", "--json"], environment: installation.environment)
        #expect(one.output.trimmingCharacters(in: .whitespacesAndNewlines) == "{\"deleted\":1}", "\(one.output)")
        #expect(try queue.deadJobs(on: QueueConnection(redis)).map(\.member).sorted() == [3, 5])
        let rest = try Self.run(["queue", "dead", "--delete", "--all"], environment: installation.environment)
        #expect(rest.output.contains("deleted 2 dead job(s)"), "\(rest.output)")
        #expect(try queue.deadJobs(on: QueueConnection(redis)).isEmpty && queue.stats(on: QueueConnection(redis)).waiting[.backfill] == 1)
        let misuse = try Self.run(["queue", "dead", "--all"], environment: installation.environment)
        #expect(misuse.status != 0 && misuse.output.contains("--all goes with --delete"), "\(misuse.output)")
    }

    @Test("SIGINT or SIGTERM during an import: the batch in flight is committed and what is reported is what MySQL holds")
    func interruptedImport() throws {
        let directory = try makeTemporaryDirectory(prefix: "kindred-cli-import")
        let generated = try Self.run(["synthesize", "--members", "20000", "--questions", "20", "--out", directory.path])
        #expect(generated.status == 0, "\(generated.output)")
        let mysql = try MariaDBServer.shared()
        for (signal, expected) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            let database = try mysql.createDatabase()
            let environment = ["KINDRED_MYSQL": mysql.url(database: database)]
            #expect(try Self.run(["migrate"], environment: environment).status == 0)
            let importing = try Self.start(
                ["import", "--survey", directory.appendingPathComponent("survey.json").path,
                 "--members", directory.appendingPathComponent("members.jsonl").path, "--batch", "2"],
                environment: environment, name: "import-\(signal)")
            let connection = try mysql.connect(database: database)
            defer { connection.close() }
            func stored() throws -> Int { Int(try connection.query("SELECT COUNT(*) FROM members").first?.int(0) ?? 0) }
            try poll(until: "some members stored", timeout: .seconds(60), interval: .milliseconds(10)) {
                guard importing.isRunning else { throw TestSupportError("the import exited: \(importing.logTail())") }
                return try stored() >= 100
            }
            importing.signal(signal)
            #expect(importing.waitForExit(timeout: .seconds(30)))
            #expect(importing.exitStatus == expected, "\(importing.logTail())")
            let output = try String(contentsOf: importing.logFile, encoding: .utf8)
            let match = try #require(
                output.firstMatch(of: /interrupted: committed ([\d,]+) members from ([\d,]+) lines read \(0 rejected, 0 blank\); last committed line (\d+)/),
                "\(output.suffix(1000))")
            let members = Int(match.1.replacing(",", with: ""))!
            let lines = Int(match.2.replacing(",", with: ""))!
            #expect(members == (try stored()), "reported committed equals what MySQL holds")
            #expect(members == lines && Int(match.3) == lines && members < 20_000 && members >= 100)
            #expect(try connection.query("SELECT MAX(id) - MIN(id) + 1 FROM members").first?.int(0).map(Int.init) == members, "a prefix of the file")
        }
    }

    @Test("every command's help reads right: no <options> usage, no default given twice, real defaults")
    func helpTexts() throws {
        let commands = [
            [], ["synthesize"], ["matches"], ["migrate"], ["import"], ["worker"], ["enqueue"], ["queue"], ["queue", "stats"],
            ["queue", "dead"], ["queue", "retry"], ["status"], ["serve"], ["backfill"], ["evict"],
        ]
        for command in commands {
            let (status, output) = try Self.run(command + ["--help"])
            #expect(status == 0, "\(command): \(output)")
            #expect(!output.contains("USAGE: kindred \(command.joined(separator: " ")) <options>"), "kindred \(command) --help: \(output.prefix(400))")
            for line in output.split(separator: "\n") {
                #expect(line.ranges(of: "default").count < 2, "default given twice in kindred \(command): \(line)")
            }
        }
        let enqueue = try Self.run(["enqueue", "--help"]).output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(enqueue.contains("default: interactive") && !enqueue.contains("default: 0"), "\(enqueue)")
        let worker = try Self.run(["worker", "--help"]).output
        #expect(worker.contains("--log-format"))
    }
}
