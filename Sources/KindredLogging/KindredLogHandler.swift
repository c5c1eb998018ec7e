#if canImport(Glibc)
import Glibc
#endif
import KindredSupport
import Logging
import Synchronization

/// The log handler of every `kindred` program: one record per line on
/// standard error, as text (logfmt) or JSON (``LogFormat``, ``LogRecord``).
///
/// Lines from all threads go through one lock and one `write(2)` each, so
/// records never interleave. Metadata merges as swift-log specifies: the
/// handler's own, then the metadata provider's, then the call's.
///
/// Member data is personal: callers log ids, counts and rule names, never
/// answers; the handler adds nothing but time, level and label.
package struct KindredLogHandler: LogHandler {
    package let label: String
    package let format: LogFormat
    package var logLevel: Logger.Level
    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?
    private let sink: LogSink

    package init(label: String, format: LogFormat, level: Logger.Level, sink: LogSink = .standardError) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.sink = sink
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let given = event.metadata { merged.merge(given) { $1 } }
        let record = LogRecord(
            time: .now(), level: event.level, label: label, message: event.message.description, metadata: merged)
        sink.write(format == .json ? record.json : record.text)
    }
}

/// Where log lines go: standard error, or (for tests) a closure.
package final class LogSink: Sendable {
    private let lock = Mutex(())
    private let output: @Sendable (String) -> Void

    package init(_ output: @escaping @Sendable (String) -> Void) { self.output = output }

    /// Writes `line` and a newline with as few `write(2)` calls as it takes.
    package static let standardError = LogSink { line in
        var bytes = Array((line + "\n").utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }

    /// One line, never interleaved with another.
    package func write(_ line: String) {
        lock.withLock { _ in output(line) }
    }
}

/// The logging setup of one process, made once.
package enum KindredLogging {
    private static let state = LoggingState()

    /// Sends every `Logger` of the process (ours and the libraries') to
    /// ``KindredLogHandler`` with `format` and `level`. The first call wins:
    /// swift-log allows one bootstrap per process.
    package static func bootstrap(format: LogFormat, level: Logger.Level) {
        state.once {
            LoggingSystem.bootstrap { label in KindredLogHandler(label: label, format: format, level: level) }
        }
    }

    /// A logger with `label`, `format` and `level` (bootstrapping the
    /// process's logging first), writing to `sink` (standard error unless a
    /// program draws something there that the lines must go around).
    package static func logger(_ label: String, format: LogFormat, level: Logger.Level, sink: LogSink = .standardError) -> Logger {
        bootstrap(format: format, level: level)
        var logger = Logger(label: label) { KindredLogHandler(label: $0, format: format, level: level, sink: sink) }
        logger.logLevel = level
        return logger
    }
}

private final class LoggingState: Sendable {
    private let done = Mutex(false)

    func once(_ body: () -> Void) {
        done.withLock { done in
            guard !done else { return }
            done = true
            body()
        }
    }
}
