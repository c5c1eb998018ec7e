import ArgumentParser
import Foundation
import KindredConfig
import KindredCore
import KindredLogging
import KindredRuns
import Logging
import MariaDBClient
import Scoring
import WorkQueue

/// Options every program shares: where the configuration comes from.
struct ConfigOptions: ParsableArguments {
    @Option(help: "A JSON config file (default: $KINDRED_CONFIG). Environment variables override it, flags override both; see docs/configuration.md.")
    var config: String?

    /// The layered configuration: file < environment < the given flag overrides.
    func load() async throws -> KindredConfiguration {
        try await KindredConfiguration.load(file: config, environment: ProcessInfo.processInfo.environment)
    }
}

/// SCORING.md's settings as flags (each overrides KINDRED_TOP_N, ...).
struct ScoringOptions: ParsableArguments {
    @Option(name: .customLong("top-n"), help: "Matches kept per member, N (default: $KINDRED_TOP_N, else 5000).")
    var topN: Int?

    @Option(name: .customLong("min-score"), help: "Lowest score kept, in tenths 0-100 (default: $KINDRED_MIN_SCORE, else 0).")
    var minScore: Int?

    @Option(name: .customLong("min-common"), help: "Common questions a pair needs (default: $KINDRED_MIN_COMMON, else 5).")
    var minCommon: Int?

    /// `base` with the flags that were given applied, validated.
    func apply(to base: ScoringSettings) throws -> ScoringSettings {
        var settings = base
        if let topN { settings.topN = topN }
        if let minScore { settings.minScore = minScore }
        if let minCommon { settings.minCommon = minCommon }
        do {
            return try settings.validated()
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// Writes a line to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// `--log-level` and `--log-format`, for the programs that log. Each
/// overrides `KINDRED_LOG_LEVEL` / `KINDRED_LOG_FORMAT` (or `log_level` /
/// `log_format` in the config file); a name that is not a level or a format
/// is refused naming the valid ones, wherever it came from.
struct LogOptions: ParsableArguments {
    @Option(
        name: .customLong("log-level"),
        help: "trace, debug, info, notice, warning, error or critical (default: $KINDRED_LOG_LEVEL, else info for worker, serve and import, warning for backfill and evict).")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "text (logfmt key=value pairs) or json (one object per line) (default: $KINDRED_LOG_FORMAT, else text).")
    var logFormat: String?

    func validate() throws {
        if let logLevel {
            do { _ = try LogLevelName.parse(logLevel, setting: "--log-level") } catch { throw ValidationError(error.description) }
        }
        if let logFormat {
            do { _ = try LogFormat.parse(logFormat, setting: "--log-format") } catch { throw ValidationError(error.description) }
        }
    }

    /// The process's logger with `label`: the flags, else the configuration,
    /// else `defaultLevel` and text. Every `Logger` the process makes
    /// afterwards (the libraries' too) writes the same way.
    func logger(
        _ label: String, configuration: KindredConfiguration, defaultLevel: Logger.Level = .info, sink: LogSink = .standardError
    ) throws -> Logger {
        let level: Logger.Level
        if let logLevel {
            level = try LogLevelName.parse(logLevel, setting: "--log-level")
        } else if let name = configuration.logLevel {
            level = try LogLevelName.parse(name, setting: configuration.source(of: KindredConfiguration.Key.logLevel))
        } else {
            level = defaultLevel
        }
        let format: LogFormat
        if let logFormat {
            format = try LogFormat.parse(logFormat, setting: "--log-format")
        } else if let name = configuration.logFormat {
            format = try LogFormat.parse(name, setting: configuration.source(of: KindredConfiguration.Key.logFormat))
        } else {
            format = .text
        }
        return KindredLogging.logger(label, format: format, level: level, sink: sink)
    }
}

/// Options `kindred backfill` and `kindred evict` share.
struct RunOptions: ParsableArguments {
    @Option(help: "The instant windows are measured from: YYYY-MM-DD (midnight UTC) or an RFC 3339 UTC timestamp (default: now). Kept by the checkpoint: a resumed run uses its own.")
    var now: String?

    @Option(help: "Members per second at most, so a live site is not starved (default: no cap).")
    var rate: Double?

    @Flag(name: .customLong("dry-run"), help: "Print what would be done (counts per shard, estimated memory) and change nothing.")
    var dryRun = false

    @Flag(help: "Abandon the unfinished run of the same selection and start over.")
    var restart = false

    @Option(name: .customLong("progress-every"), help: "Seconds between plain progress lines when standard error is not a terminal.")
    var progressEvery: Double = 5

    func validate() throws {
        if let rate, !(rate > 0 && rate <= 1_000_000) { throw ValidationError("--rate must be a positive number of members per second") }
        guard progressEvery > 0 else { throw ValidationError("--progress-every must be positive") }
        if let now { _ = try instant(now, option: "--now") }
    }

    /// The run's `now`, Unix seconds (the clock when not given).
    func nowSeconds() throws -> (Int64, explicit: Int64?) {
        if let now {
            let seconds = try instant(now, option: "--now")
            return (seconds, seconds)
        }
        return (Int64(Date().timeIntervalSince1970), nil)
    }
}

func duration(_ text: String, option: String) throws -> Int64 {
    do { return try RunText.seconds(in: text) } catch { throw ValidationError("\(option): \(error)") }
}

func instant(_ text: String, option: String) throws -> Int64 {
    do { return try RunText.instant(text) } catch { throw ValidationError("\(option): \(error)") }
}

/// Member ids from a file, one per line; blank lines and `#` comments skipped.
func readIDs(_ path: String) throws -> [MemberID] {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw ValidationError("--ids: cannot read \(path): \(error.localizedDescription)") }
    var ids: [MemberID] = []
    for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first?
            .trimmingCharacters(in: .whitespaces) ?? ""
        if trimmed.isEmpty { continue }
        guard let id = MemberID(trimmed), id > 0 else {
            throw ValidationError("--ids: line \(index + 1) of \(path) is not a member id (a positive integer below 2^32)")
        }
        ids.append(id)
    }
    return ids
}

/// The member store's connection settings (from KINDRED_MYSQL / the config file).
func mysqlConfiguration(_ configuration: KindredConfiguration) throws -> MariaDBConnection.Configuration {
    guard let url = configuration.mysql, !url.isEmpty else {
        throw CLIError("no member store configured: set KINDRED_MYSQL (or \"mysql\" in the config file)")
    }
    do {
        let mysql = try MariaDBConnection.Configuration(url: url)
        CommandContext.shared.record(mysql)
        return mysql
    } catch let error as MariaDBError {
        // The reason only ("invalid MySQL URL: …"): it never quotes the URL.
        throw CLIError("KINDRED_MYSQL: \(error.message)")
    }
}

/// The queue's address (from KINDRED_QUEUE / the config file).
func queueAddress(_ configuration: KindredConfiguration) throws -> QueueAddress {
    guard let text = configuration.queue, !text.isEmpty else {
        throw CLIError(
            "the queue is not configured: set KINDRED_QUEUE (e.g. redis://127.0.0.1:7000, or redis+cluster://HOST:PORT for a Redis Cluster) or \"queue\" in the config file")
    }
    do {
        let address = try QueueAddress(text)
        CommandContext.shared.record(queue: address)
        return address
    } catch { throw CLIError("KINDRED_QUEUE: \(error)") }
}

/// The queue's address when one is configured; nil when KINDRED_QUEUE (and
/// "queue" in the config file) is unset. A malformed address is an error,
/// never ignored.
func optionalQueueAddress(_ configuration: KindredConfiguration) throws -> QueueAddress? {
    guard let text = configuration.queue, !text.isEmpty else { return nil }
    return try queueAddress(configuration)
}

/// Parses `HOST:PORT` (IPv6 in brackets).
func hostAndPort(_ text: String, setting: String) throws -> (String, Int) {
    var host = Substring(text)
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
        throw CLIError("\(setting): expected HOST:PORT, not \(text)")
    }
    host = text[..<colon]
    if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
    guard !host.isEmpty else { throw CLIError("\(setting): expected HOST:PORT, not \(text)") }
    CommandContext.shared.listen = (hostPort(String(host), port), setting)
    return (String(host), port)
}
