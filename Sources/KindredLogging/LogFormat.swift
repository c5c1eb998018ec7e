import Logging

/// How log records are written: `text` (logfmt-like `key=value` pairs, for
/// people and for `grep`) or `json` (one object per line, for collectors).
///
/// Set with `--log-format`, `KINDRED_LOG_FORMAT` or `log_format` in the
/// config file; anything else is refused (``parse(_:setting:)``).
package enum LogFormat: String, Sendable, CaseIterable, CustomStringConvertible {
    case text
    case json

    package var description: String { rawValue }

    /// The format named by `text`, or an error naming `setting` and the
    /// accepted values.
    package static func parse(_ text: String, setting: String) throws(LogSettingError) -> LogFormat {
        guard let format = LogFormat(rawValue: text) else {
            throw LogSettingError(
                "\(setting): unknown log format \"\(text)\"; use \(allCases.map(\.rawValue).joined(separator: " or "))")
        }
        return format
    }
}

/// The log levels by name, as settings give them.
package enum LogLevelName {
    /// Every level, least severe first, as `--log-level` accepts them.
    package static let all: [String] = Logger.Level.allCases.map(\.rawValue)

    /// The level named by `text`, or an error naming `setting` and the valid levels.
    package static func parse(_ text: String, setting: String) throws(LogSettingError) -> Logger.Level {
        guard let level = Logger.Level(rawValue: text) else {
            throw LogSettingError(
                "\(setting): unknown log level \"\(text)\"; use one of \(all.joined(separator: ", "))")
        }
        return level
    }
}

/// A log level or format that is not one of the accepted names.
package struct LogSettingError: Error, Sendable, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}
