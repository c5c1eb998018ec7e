import Configuration
import Scoring
import SystemPackage

/// The settings every Kindred program reads, in one vocabulary (DESIGN.md):
/// a JSON config file named by `--config` or `KINDRED_CONFIG`, overridden by
/// environment variables (`KINDRED_<KEY>`), overridden by flags.
///
/// Keys in the file are the snake_case names below (`{"top_n": 5000,
/// "mysql": "mysql://..."}`); each has the environment name `KINDRED_` plus
/// the key in upper case. Secrets (`mysql`, `api_token`) come only from the
/// file or the environment, never from flags, and are never printed: the
/// ``description`` redacts them.
package struct KindredConfiguration: Sendable, CustomStringConvertible {
    /// `KINDRED_MYSQL`: the member store URL (holds a password: secret).
    package var mysql: String?
    /// `KINDRED_QUEUE`: the Redis that holds the queue.
    package var queue: String?
    /// `KINDRED_API_TOKEN`: bearer token for `/v1` (secret).
    package var apiToken: String?
    /// `KINDRED_LISTEN`: where `kindred serve` listens.
    package var listen: String
    /// `KINDRED_METRICS`: where `kindred worker` serves metrics.
    package var metrics: String
    /// `KINDRED_TOP_N`, `KINDRED_MIN_SCORE`, `KINDRED_MIN_COMMON`.
    package var scoring: ScoringSettings
    /// `KINDRED_LOG_LEVEL` / `log_level`, as given (the programs check the name).
    package var logLevel: String?
    /// `KINDRED_LOG_FORMAT` / `log_format`, as given: `text` or `json`.
    package var logFormat: String?
    /// The config file that was read, if any.
    package var file: String?
    /// The `KINDRED_*` environment variables that were set (names only), so
    /// an error can say where a bad value came from.
    package var environmentNames: Set<String> = []
    /// The raw reader, for program-specific keys (`workers`, ...).
    package let reader: ConfigReader

    /// The keys, as they appear in the file; `KINDRED_` + uppercased in the environment.
    package enum Key {
        package static let mysql = "mysql"
        package static let queue = "queue"
        package static let apiToken = "api_token"
        package static let listen = "listen"
        package static let metrics = "metrics"
        package static let topN = "top_n"
        package static let minScore = "min_score"
        package static let minCommon = "min_common"
        package static let logLevel = "log_level"
        package static let logFormat = "log_format"
        /// `kindred worker`'s and `kindred backfill`'s thread count.
        package static let workers = "workers"
        /// Keys that may never come from flags.
        package static let secrets: Set<String> = [mysql, apiToken]
        /// Every key a config file may hold: the shared ones and each
        /// program's own. A key not here is refused with the nearest one
        /// suggested (``ConfigFileCheck``); a program that reads a new key
        /// with ``KindredConfiguration/integer(_:default:)`` or
        /// ``KindredConfiguration/string(_:)`` must add it here.
        /// The keys whose values are integers (JSON numbers without a
        /// fraction); every other key's value is a string.
        package static let integers: Set<String> = [topN, minScore, minCommon, workers]

        package static let all: Set<String> = [
            mysql, queue, apiToken, listen, metrics, topN, minScore, minCommon, logLevel, logFormat, workers,
        ]

        /// The environment variable of a key: `KINDRED_` + the key in upper case.
        package static func environmentName(_ key: String) -> String { "KINDRED_" + key.uppercased() }
    }

    /// Where the value of `key` came from, for error messages: the
    /// environment variable when it is set, else the key in the config file.
    package func source(of key: String) -> String {
        let name = Key.environmentName(key)
        if environmentNames.contains(name) || file == nil { return name }
        return "\"\(key)\" in \(file!)"
    }

    /// Loads the layered configuration.
    ///
    /// - Parameters:
    ///   - file: the config file (`--config`); when nil, `KINDRED_CONFIG` from `environment`.
    ///   - environment: the process environment (tests pass their own).
    ///
    /// Flags override the result afterwards (programs assign the properties);
    /// there are no flags for secrets.
    package static func load(
        file: String? = nil,
        environment: [String: String]
    ) async throws -> KindredConfiguration {
        var providers: [any ConfigProvider] = []
        let secretNames = Set(Key.secrets.map { "KINDRED_" + $0.uppercased() })
        let environmentProvider = EnvironmentVariablesProvider(
            environmentVariables: environment, secretsSpecifier: .specific(secretNames))
        providers.append(
            KeyMappingProvider(upstream: environmentProvider) { key in key.prepending(["kindred"]) })
        let path = file ?? environment["KINDRED_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        if let path {
            // Strict JSON and known keys first: swift-configuration would
            // ignore a misspelt key and use the default.
            try ConfigFileCheck.check(path: path, knownKeys: Key.all)
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(path)))
            } catch {
                throw ConfigurationError("cannot read the config file \(path): \(String(describing: error).prefix(200))")
            }
        }
        var configuration = try KindredConfiguration(reader: ConfigReader(providers: providers), file: path)
        configuration.environmentNames = Set(environment.keys.filter { $0.hasPrefix("KINDRED_") })
        return configuration
    }

    init(reader: ConfigReader, file: String? = nil) throws {
        self.reader = reader
        self.file = file
        mysql = reader.string(forKey: ConfigKey(Key.mysql), isSecret: true)
        queue = reader.string(forKey: ConfigKey(Key.queue))
        apiToken = reader.string(forKey: ConfigKey(Key.apiToken), isSecret: true)
        listen = reader.string(forKey: ConfigKey(Key.listen), default: "127.0.0.1:8080")
        metrics = reader.string(forKey: ConfigKey(Key.metrics), default: "127.0.0.1:9464")
        logLevel = reader.string(forKey: ConfigKey(Key.logLevel))
        logFormat = reader.string(forKey: ConfigKey(Key.logFormat))
        let defaults = ScoringSettings.default
        let settings = ScoringSettings(
            topN: try Self.integer(reader, Key.topN, default: defaults.topN),
            minScore: try Self.integer(reader, Key.minScore, default: defaults.minScore),
            minCommon: try Self.integer(reader, Key.minCommon, default: defaults.minCommon))
        do {
            scoring = try settings.validated()
        } catch {
            throw ConfigurationError(error.description)
        }
    }

    /// An integer setting that may arrive as a JSON number or as a string
    /// (environment variables and flags are strings).
    static func integer(_ reader: ConfigReader, _ key: String, default value: Int) throws -> Int {
        if let text = reader.string(forKey: ConfigKey(key)) {
            guard let number = Int(text) else {
                throw ConfigurationError("\(key) (KINDRED_\(key.uppercased())) must be an integer")
            }
            return number
        }
        return reader.int(forKey: ConfigKey(key), default: value)
    }

    /// An integer program setting such as `workers`.
    package func integer(_ key: String, default value: Int) throws -> Int {
        try Self.integer(reader, key, default: value)
    }

    /// A string program setting.
    package func string(_ key: String) -> String? { reader.string(forKey: ConfigKey(key)) }

    /// `redis://user:***@host:port/db`: a URL's password (what follows the
    /// first `:` of the user info) replaced, whatever else the URL holds.
    static func redactingPassword(_ url: String) -> String {
        guard let scheme = url.firstRange(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        let info = url[scheme.upperBound..<at]
        let user = info.firstIndex(of: ":").map { info[..<$0] + ":***" } ?? "***"
        return url[..<scheme.upperBound] + user + url[at...]
    }

    package var description: String {
        "KindredConfiguration(mysql: \(mysql == nil ? "unset" : "<redacted>"), queue: \(queue.map(Self.redactingPassword) ?? "unset"), "
            + "api_token: \(apiToken == nil ? "unset" : "<redacted>"), listen: \(listen), metrics: \(metrics), "
            + "top_n: \(scoring.topN), min_score: \(scoring.minScore), min_common: \(scoring.minCommon))"
    }
}

/// A setting that is missing, malformed or given where it may not be.
package struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}
