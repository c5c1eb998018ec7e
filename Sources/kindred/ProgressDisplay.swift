import Foundation
import KindredSupport
import Synchronization

/// A long command's progress on standard error: on a terminal one line
/// redrawn in place (bar, rate, ETA) at most 5 times a second; otherwise a
/// plain line every `plainInterval` (5 s by default), for logs. Messages
/// (rejected lines, retries, plans) are printed above the bar.
///
/// Thread-safe: draws and messages are serialized (a log line from another
/// thread goes above the bar, never through it).
final class ProgressDisplay: Sendable {
    let interactive: Bool
    let plainInterval: Duration
    /// When the line was last drawn, and what it showed.
    private let state = Mutex((lastDraw: ContinuousClock.Instant?.none, lastLine: ""))
    private let clock = ContinuousClock()

    init(interactive: Bool, plainInterval: Duration = .seconds(5)) {
        self.interactive = interactive
        self.plainInterval = plainInterval
    }

    /// Standard error is a terminal.
    static var standardErrorIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    /// Draws the line `describe(bar)` gives (`bar`: on a terminal), unless
    /// the last draw was too recent; `force` draws anyway (the last state).
    func update(force: Bool = false, _ describe: (_ bar: Bool) -> String) {
        let now = clock.now
        let interval: Duration = interactive ? .milliseconds(200) : plainInterval
        state.withLock { state in
            if !force, let lastDraw = state.lastDraw, now - lastDraw < interval { return }
            state.lastDraw = now
            let line = describe(interactive)
            if interactive {
                state.lastLine = line
                write("\r\u{1B}[2K" + line)
            } else if force || line != state.lastLine {
                state.lastLine = line
                write(line + "\n")
            }
        }
    }

    func message(_ text: String) {
        state.withLock { state in
            if interactive && !state.lastLine.isEmpty {
                write("\r\u{1B}[2K" + text + "\n" + state.lastLine)
            } else {
                write(text + "\n")
            }
        }
    }

    func finish() {
        state.withLock { state in
            if interactive && !state.lastLine.isEmpty { write("\r\u{1B}[2K") }
        }
    }

    /// `[#########...............]` for `fraction` of `width`.
    static func bar(_ fraction: Double, width: Int = 24) -> String {
        let filled = max(0, min(width, Int(fraction * Double(width))))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }

    /// `m:ss`, or `h:mm:ss` past an hour.
    static func eta(_ seconds: Int) -> String {
        let seconds = max(0, seconds)
        if seconds >= 3600 {
            return String(format: "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60)
        }
        return String(format: "%d:%02d", seconds / 60, seconds % 60)
    }

    static func grouped(_ value: Int) -> String {
        let digits = String(value)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 && character != "-" { out.append(",") }
            out.append(character)
        }
        return out
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.1f", duration.inSeconds)
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
