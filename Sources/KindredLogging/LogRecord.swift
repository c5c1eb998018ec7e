#if canImport(Glibc)
import Glibc
#endif
import Logging

/// One log record and its two renderings. Pure: the handler supplies the
/// time, so tests render records without a clock.
///
/// - JSON: `{"time":"2026-11-30T15:36:50.123Z","level":"info","logger":"kindred.worker","message":"...","metadata":{...}}`
///   on one line. Metadata keeps its nesting (dictionaries as objects, arrays
///   as arrays); strings are escaped as RFC 8259 requires; integers, finite
///   floating-point values and ``Milliseconds`` are numbers; every other
///   value is its description as a string.
/// - Text: `time=... level=info logger=kindred.worker msg="..." key=value ...`,
///   logfmt: a value is quoted (with `\"`, `\\`, `\n`, `\r`, `\t` and `\uXXXX`
///   escapes) when it is empty or holds a space, a quote, `=`, a backslash
///   or a control character. Nested metadata is flattened to `outer.inner=value`;
///   arrays are written `[a,b]`.
///
/// Metadata keys are sorted, so equal records render equally.
package struct LogRecord: Sendable {
    package var time: WallTime
    package var level: Logger.Level
    package var label: String
    package var message: String
    package var metadata: Logger.Metadata

    package init(time: WallTime, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) {
        self.time = time
        self.level = level
        self.label = label
        self.message = message
        self.metadata = metadata
    }

    /// A wall-clock instant with millisecond precision, UTC.
    package struct WallTime: Sendable, Hashable {
        /// Milliseconds since the Unix epoch.
        package var unixMilliseconds: Int64

        package init(unixMilliseconds: Int64) { self.unixMilliseconds = unixMilliseconds }

        /// The clock, now.
        package static func now() -> WallTime {
            var spec = timespec()
            clock_gettime(CLOCK_REALTIME, &spec)
            return WallTime(unixMilliseconds: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
        }

        /// RFC 3339 with milliseconds, UTC: `2026-11-30T15:36:50.123Z`.
        package var rfc3339: String {
            var seconds = time_t(unixMilliseconds.floorDivided(by: 1000))
            let millis = Int(unixMilliseconds - Int64(seconds) * 1000)
            var parts = tm()
            gmtime_r(&seconds, &parts)
            func pad(_ value: Int, _ width: Int) -> String {
                let digits = String(value)
                return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
            }
            return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))"
                + "T\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(millis, 3))Z"
        }
    }

    // MARK: JSON

    /// The record as one JSON object (no newline).
    package var json: String {
        var out = "{\"time\":\"\(time.rfc3339)\",\"level\":\"\(level.rawValue)\",\"logger\":"
        Self.appendJSONString(label, to: &out)
        out += ",\"message\":"
        Self.appendJSONString(message, to: &out)
        out += ",\"metadata\":"
        Self.appendJSON(.dictionary(metadata), to: &out)
        out += "}"
        return out
    }

    static func appendJSON(_ value: Logger.MetadataValue, to out: inout String) {
        switch value {
        case .string(let text):
            appendJSONString(text, to: &out)
        case .stringConvertible(let convertible):
            if let number = jsonNumber(convertible) {
                out += number
            } else {
                appendJSONString(convertible.description, to: &out)
            }
        case .dictionary(let dictionary):
            out += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                appendJSONString(key, to: &out)
                out += ":"
                appendJSON(dictionary[key]!, to: &out)
            }
            out += "}"
        case .array(let values):
            out += "["
            for (index, element) in values.enumerated() {
                if index > 0 { out += "," }
                appendJSON(element, to: &out)
            }
            out += "]"
        }
    }

    /// The JSON number for integers, finite floating-point values and
    /// ``Milliseconds``; nil for anything else (written as a string).
    static func jsonNumber(_ value: any CustomStringConvertible & Sendable) -> String? {
        switch value {
        case let milliseconds as Milliseconds: return milliseconds.description
        case let integer as any BinaryInteger: return integer.description
        case let number as Double: return number.isFinite ? number.description : nil
        case let number as Float: return number.isFinite ? number.description : nil
        default: return nil
        }
    }

    static func appendJSONString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{00}"..."\u{1F}", "\u{7F}", "\u{2028}", "\u{2029}": out += unicodeEscape(scalar)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    static func unicodeEscape(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    // MARK: text

    /// The record as one logfmt line (no newline).
    package var text: String {
        var out = "time=\(time.rfc3339) level=\(level.rawValue) logger="
        Self.appendTextValue(label, to: &out)
        out += " msg="
        Self.appendTextValue(message, to: &out)
        var pairs: [(String, String)] = []
        Self.flatten(metadata, prefix: "", into: &pairs)
        for (key, value) in pairs {
            out += " "
            out += Self.textKey(key)
            out += "="
            Self.appendTextValue(value, to: &out)
        }
        return out
    }

    static func flatten(_ metadata: Logger.Metadata, prefix: String, into pairs: inout [(String, String)]) {
        for key in metadata.keys.sorted() {
            let name = prefix.isEmpty ? key : prefix + "." + key
            switch metadata[key]! {
            case .dictionary(let nested) where !nested.isEmpty: flatten(nested, prefix: name, into: &pairs)
            case let value: pairs.append((name, textValue(value)))
            }
        }
    }

    static func textValue(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .dictionary(let dictionary):
            "{" + dictionary.keys.sorted().map { "\($0)=\(textValue(dictionary[$0]!))" }.joined(separator: ",") + "}"
        case .array(let values): "[" + values.map(textValue).joined(separator: ",") + "]"
        }
    }

    /// A key as logfmt allows it: characters that would break the pair
    /// (space, `=`, `"`, control characters) become `_`.
    static func textKey(_ key: String) -> String {
        guard !key.isEmpty else { return "_" }
        var out = ""
        for scalar in key.unicodeScalars {
            switch scalar {
            case " ", "=", "\"", "\u{00}"..."\u{1F}", "\u{7F}": out += "_"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func appendTextValue(_ value: String, to out: inout String) {
        let needsQuotes =
            value.isEmpty
            || value.unicodeScalars.contains { scalar in
                scalar == " " || scalar == "\"" || scalar == "=" || scalar == "\\" || scalar.value < 0x20 || scalar.value == 0x7F
            }
        guard needsQuotes else {
            out += value
            return
        }
        out += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{00}"..."\u{1F}", "\u{7F}": out += unicodeEscape(scalar)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
