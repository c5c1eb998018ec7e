import ArgumentParser
import Foundation
import KindredConfig
import KindredCore
import KindredLogging
import MariaDBClient
import MemberStore
import RedisClient
import ScoreStore
import Synchronization
import WorkQueue

/// What the running command is connected to, recorded as it resolves its
/// settings, so that an error reaching the top level can name the setting
/// and the `host:port` behind it (``ErrorReport``). Holds no password.
final class CommandContext: Sendable {
    static let shared = CommandContext()

    private struct State {
        var mysql: (address: String, user: String, database: String?)?
        var queue: String?
        var listen: (address: String, setting: String)?
    }
    private let state = Mutex(State())

    /// The member store: `host:port` (or the socket path), the user and database.
    var mysql: (address: String, user: String, database: String?)? {
        get { state.withLock { $0.mysql } }
        set { state.withLock { $0.mysql = newValue } }
    }

    /// The queue's `host:port`.
    var queue: String? {
        get { state.withLock { $0.queue } }
        set { state.withLock { $0.queue = newValue } }
    }

    /// The address the command listens on and the setting that named it.
    var listen: (address: String, setting: String)? {
        get { state.withLock { $0.listen } }
        set { state.withLock { $0.listen = newValue } }
    }

    func record(_ mysql: MariaDBConnection.Configuration) {
        let address =
            switch mysql.endpoint {
            case .tcp(let host, let port): hostPort(host, port)
            case .unixSocket(let path): path
            }
        self.mysql = (address, mysql.user, mysql.database)
    }

    func record(queue: QueueAddress) { self.queue = hostPort(queue.url.host, queue.url.port) }
}

/// `host:port`, with an IPv6 host in brackets.
func hostPort(_ host: String, _ port: Int) -> String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

/// Turns an error that reached the top of a command into what an operator
/// should do about it, naming the setting and the server's address:
/// `access denied for user kindred at 127.0.0.1:3306 (KINDRED_MYSQL)`.
///
/// Never the Swift debug form of an error, never a password (the URLs are
/// not quoted, only `host:port` and the user), never SQL text (which could
/// carry member data): database errors are reduced to their number and the
/// server's message, which MariaDBClient has already redacted.
enum ErrorReport {
    /// The message for `error`, or nil for the errors swift-argument-parser
    /// reports itself (usage, help, exit codes).
    static func message(for error: any Error, context: CommandContext = .shared) -> String? {
        // swift-argument-parser's own errors (help requests arrive from a
        // command's run, as CommandError, which is internal to it).
        if String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") { return nil }
        switch error {
        case is ExitCode, is CleanExit, is ValidationError:
            return nil
        case let error as CLIError:
            return error.description
        case let error as ConfigurationError:
            return error.description
        case let error as LogSettingError:
            return error.description
        case let error as MariaDBError:
            return mysql(error, context: context)
        case let error as MemberStoreError:
            if let underlying = error.underlying, error.code == .unavailable {
                return mysql(underlying, context: context) + " (gave up retrying)"
            }
            return error.message
        case let error as ImportFailure:
            let progress = error.progress
            let cause = message(for: error.underlying, context: context) ?? "\(error.underlying)"
            return "\(cause); stopped after storing \(progress.members) members in \(progress.batches) batches "
                + "(\(progress.lines) lines read); importing the same file again is safe"
        case let error as QueueError:
            switch error {
            case .redis(let redis): return self.redis(redis, context: context)
            case .server(let message): return "the queue at \(context.queue ?? "?") (KINDRED_QUEUE) answered with an error: \(message)"
            case .unexpectedReply: return "the queue at \(context.queue ?? "?") (KINDRED_QUEUE) gave an unexpected reply: is it a Redis-compatible server?"
            }
        case let error as RedisError:
            return redis(error, context: context)
        case let error as ScoreStoreError:
            if let underlying = error.underlying { return redis(underlying, context: context, shard: error.shard) }
            return error.shard.map { "shard \($0) (see `kindred shards list`): \(error.message)" } ?? error.message
        case let error as GenerationFailure:
            return error.message
        default:
            let text = String(describing: error)
            if text.contains("Address already in use") || text.contains("errno: 98") {
                if let listen = context.listen {
                    return "cannot listen on \(listen.address) (\(listen.setting)): the address is already in use"
                }
                return "cannot listen: the address is already in use"
            }
            if text.contains("Cannot assign requested address") || text.contains("errno: 99"), let listen = context.listen {
                return "cannot listen on \(listen.address) (\(listen.setting)): no such local address"
            }
            return text
        }
    }

    /// A MySQL error as what to do, naming KINDRED_MYSQL and the address.
    static func mysql(_ error: MariaDBError, context: CommandContext) -> String {
        let mysql = context.mysql
        let address = mysql?.address ?? "?"
        let user = mysql?.user ?? "?"
        // A URL that does not parse (commands that hand the URL on unparsed):
        // the reason, which never quotes the URL.
        if error.code == .invalidConfiguration { return "KINDRED_MYSQL: \(error.message)" }
        switch error.errorNumber {
        case 1146:
            return "the schema is missing: run `kindred migrate` (\(mysql?.database.map { "database \($0) at " } ?? "")\(address), KINDRED_MYSQL)"
        case 1045, 1698:
            // MariaDBClient marks a plain-text login, which is also how a
            // server with require_secure_transport refuses one.
            let tls = error.mayNeedTLS ? ", or the server requires TLS: add ?ssl-mode=VERIFY_CA&ssl-ca=PATH to KINDRED_MYSQL" : ""
            return "access denied for user \(user) at \(address) (KINDRED_MYSQL): check the user and password\(tls)"
        case 1044:
            return "access denied for user \(user) to database \(mysql?.database ?? "?") at \(address) (KINDRED_MYSQL): grant the user its privileges"
        case 1049:
            return "the database \(mysql?.database ?? "?") does not exist at \(address) (KINDRED_MYSQL): create it, then run `kindred migrate`"
        case 2002, 2003:
            return "cannot connect to MySQL at \(address) (KINDRED_MYSQL): \(reason(error.message))"
        case 2005:
            return "cannot connect to MySQL at \(address) (KINDRED_MYSQL): unknown host"
        case 2006, 2013, 2055:
            return "lost the connection to MySQL at \(address) (KINDRED_MYSQL): the server went away; try again when it is back"
        default:
            var text = "MySQL at \(address) (KINDRED_MYSQL): \(error.message)"
            if error.errorNumber != 0 { text += " (error \(error.errorNumber))" }
            return text
        }
    }

    /// A Redis error as what to do: the queue (KINDRED_QUEUE) or a shard.
    static func redis(_ error: RedisError, context: CommandContext, shard: UInt32? = nil) -> String {
        let address = error.context.isEmpty ? (shard == nil ? context.queue ?? "?" : "?") : error.context
        let what =
            shard == nil && address == context.queue
            ? "the queue at \(address) (KINDRED_QUEUE)"
            : (shard.map { "shard \($0)" } ?? "the shard") + " at \(address) (see `kindred shards list`)"
        switch error.code {
        case .connectionFailed: return "cannot connect to \(what): \(reason(error.message))"
        case .connectionBroken: return "lost the connection to \(what): \(reason(error.message))"
        case .timedOut: return "\(what) did not answer in time"
        default: return "\(what) answered with an error: \(error.message)"
        }
    }

    /// The system's reason in a connection error's message, in plain words.
    static func reason(_ message: String) -> String {
        let lowered = message.lowercased()
        if lowered.contains("refused") || lowered.contains("(111)") || lowered.contains("(115)") { return "connection refused" }
        if lowered.contains("timed out") || lowered.contains("timeout") || lowered.contains("(110)") { return "timed out" }
        if lowered.contains("no route") || lowered.contains("(113)") { return "no route to host" }
        if lowered.contains("unreachable") || lowered.contains("(101)") { return "network unreachable" }
        if lowered.contains("no such file") || lowered.contains("(2)") { return "no such socket" }
        if lowered.contains("name") && (lowered.contains("resol") || lowered.contains("unknown")) { return "unknown host" }
        return message
    }
}
