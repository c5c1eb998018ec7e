import ArgumentParser
import Foundation
import KindredConfig
import KindredLogging
import Logging
import Scoring

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
