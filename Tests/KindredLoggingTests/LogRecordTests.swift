import Foundation
import KindredLogging
import Logging
import Testing
import TestSupport

/// The two log formats, rendered without a clock or a process.
@Suite("Log records", .offCooperativePool)
struct LogRecordTests {
    /// 2026-11-30T15:36:50.123Z
    static let time = LogRecord.WallTime(unixMilliseconds: 1_796_053_010_123)

    static func record(_ metadata: Logger.Metadata, message: String = "snapshot loaded") -> LogRecord {
        LogRecord(time: time, level: .warning, label: "kindred.worker", message: message, metadata: metadata)
    }

    @Test("time is RFC 3339 with milliseconds in UTC, before and after the epoch")
    func timestamps() {
        #expect(Self.time.rfc3339 == "2026-11-30T15:36:50.123Z")
        #expect(LogRecord.WallTime(unixMilliseconds: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(LogRecord.WallTime(unixMilliseconds: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
        #expect(LogRecord.WallTime(unixMilliseconds: 951_782_400_007).rfc3339 == "2000-02-29T00:00:00.007Z")
    }

    @Test("a JSON record is one line that JSONSerialization parses, with every field and the metadata typed")
    func json() throws {
        let record = Self.record([
            "members": .stringConvertible(1200), "took_ms": .milliseconds(.nanoseconds(6_301_662_511)),
            "error": .string("quote \" backslash \\ newline \n tab \t bell \u{07} é \u{2028}"),
            "shard": .dictionary(["id": .stringConvertible(3), "address": "redis://127.0.0.1:7001"]),
            "ids": .array([.stringConvertible(1), "two"]), "ratio": .stringConvertible(Double.nan),
        ], message: "line one\nline \"two\"")
        let line = record.json
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["time"] as? String == "2026-11-30T15:36:50.123Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["logger"] as? String == "kindred.worker")
        #expect(object["message"] as? String == "line one\nline \"two\"")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["members"] as? Int == 1200)
        #expect((metadata["took_ms"] as? NSNumber)?.doubleValue == 6301.7)
        #expect(metadata["error"] as? String == "quote \" backslash \\ newline \n tab \t bell \u{07} é \u{2028}")
        let shard = try #require(metadata["shard"] as? [String: Any])
        #expect(shard["id"] as? Int == 3 && shard["address"] as? String == "redis://127.0.0.1:7001")
        #expect((metadata["ids"] as? [Any])?.count == 2)
        #expect(metadata["ratio"] as? String == "nan", "a non-finite number is no JSON number")
        #expect(line.contains("\"took_ms\":6301.7"))
    }

    @Test("a text record is logfmt: plain values bare, others quoted and escaped, nested metadata flattened")
    func text() {
        let record = Self.record([
            "members": .stringConvertible(1200), "took_ms": .milliseconds(.milliseconds(6301) + .microseconds(660)),
            "error": "connection refused", "empty": "", "eq": "a=b", "quote": "say \"hi\"", "newline": "a\nb",
            "shard": .dictionary(["id": .stringConvertible(3)]), "bad key": "x",
        ])
        #expect(
            record.text
                == "time=2026-11-30T15:36:50.123Z level=warning logger=kindred.worker msg=\"snapshot loaded\" bad_key=x empty=\"\" "
                + "eq=\"a=b\" error=\"connection refused\" members=1200 newline=\"a\\nb\" quote=\"say \\\"hi\\\"\" shard.id=3 took_ms=6301.7")
    }

    @Test("a text line splits back into its pairs")
    func textParses() {
        let line = Self.record(["a": "x y", "b": "q\"=\\", "c": "plain"]).text
        #expect(Self.logfmt(line) == [
            "time": "2026-11-30T15:36:50.123Z", "level": "warning", "logger": "kindred.worker", "msg": "snapshot loaded",
            "a": "x y", "b": "q\"=\\", "c": "plain",
        ])
    }

    @Test("durations in milliseconds with one decimal")
    func milliseconds() {
        #expect(Milliseconds(.nanoseconds(6_301_662_511)).description == "6301.7")
        #expect(Milliseconds(.zero).description == "0.0")
        #expect(Milliseconds(.microseconds(50)).description == "0.1")
        #expect(Milliseconds(.seconds(-1.25)).description == "-1250.0")
        #expect(Duration.seconds(90).millisecondsText == "90000.0")
    }

    @Test("levels and formats by name; anything else is refused naming the valid ones")
    func names() throws {
        #expect(try LogLevelName.parse("debug", setting: "--log-level") == .debug)
        #expect(try LogFormat.parse("json", setting: "--log-format") == .json)
        let level = #expect(throws: LogSettingError.self) { try LogLevelName.parse("loud", setting: "--log-level") }
        #expect(level?.description == "--log-level: unknown log level \"loud\"; use one of trace, debug, info, notice, warning, error, critical")
        let format = #expect(throws: LogSettingError.self) { try LogFormat.parse("xml", setting: "KINDRED_LOG_FORMAT") }
        #expect(format?.description == "KINDRED_LOG_FORMAT: unknown log format \"xml\"; use text or json")
    }

    @Test("the handler writes one line per record with its label, the logger's and the call's metadata")
    func handler() throws {
        let lines = Lines()
        var logger = Logger(label: "kindred.test") {
            KindredLogHandler(label: $0, format: .json, level: .info, sink: LogSink { lines.append($0) })
        }
        logger[metadataKey: "process"] = "7"
        logger.debug("hidden")
        logger.info("shown", metadata: ["member": "42"])
        let all = lines.all
        #expect(all.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(all[0].utf8)) as? [String: Any])
        #expect(object["logger"] as? String == "kindred.test" && object["message"] as? String == "shown")
        #expect(object["metadata"] as? [String: String] == ["process": "7", "member": "42"])
    }

    /// A small logfmt reader: what an operator's tool would do with a text line.
    static func logfmt(_ line: String) -> [String: String] {
        var pairs: [String: String] = [:]
        var scalars = Array(line.unicodeScalars)[...]
        while !scalars.isEmpty {
            while scalars.first == " " { scalars.removeFirst() }
            var key = ""
            while let next = scalars.first, next != "=" { key.unicodeScalars.append(scalars.removeFirst()) }
            scalars.removeFirst()
            var value = ""
            if scalars.first == "\"" {
                scalars.removeFirst()
                while let next = scalars.popFirst(), next != "\"" {
                    if next == "\\", let escaped = scalars.popFirst() {
                        switch escaped {
                        case "n": value += "\n"
                        case "t": value += "\t"
                        case "r": value += "\r"
                        default: value.unicodeScalars.append(escaped)
                        }
                    } else {
                        value.unicodeScalars.append(next)
                    }
                }
            } else {
                while let next = scalars.first, next != " " { value.unicodeScalars.append(scalars.removeFirst()) }
            }
            pairs[key] = value
        }
        return pairs
    }
}

final class Lines: @unchecked Sendable {
    // @unchecked Sendable: `lines` is only touched under `lock`.
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
