import KindredSupport
import MariaDBClient
import MemberFormat

/// The member store's clock: MySQL's `UTC_TIMESTAMP(6)` as microseconds
/// since 1970-01-01 UTC. Every time Kindred compares across processes
/// (`changed_at`, when a set's scan was covered, when a publication
/// settled) comes from the one server clock, never a machine's own.
package struct ServerTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    package var microseconds: Int64

    package init(microseconds: Int64) { self.microseconds = microseconds }

    /// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]` as MySQL prints a DATETIME(6);
    /// nil for anything else.
    package init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard bytes.count == 19 || (bytes.count > 20 && bytes.count <= 26 && bytes[19] == UInt8(ascii: ".")) else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                value = value * 10 + Int64(digit)
            }
            return value
        }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: " "),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        var fraction: Int64 = 0
        if bytes.count > 19 {
            guard let digits = number(20..<bytes.count) else { return nil }
            fraction = digits
            for _ in bytes.count..<26 { fraction *= 10 }
        }
        let days = Int64(Timestamp.daysFromCivil(year: Int(year), month: Int(month), day: Int(day)))
        microseconds = ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + fraction
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff`, what MySQL reads back as a DATETIME(6).
    package var description: String {
        let total = microseconds
        let fraction = ((total % 1_000_000) + 1_000_000) % 1_000_000
        let seconds = (total - fraction) / 1_000_000
        let daySeconds = ((seconds % 86_400) + 86_400) % 86_400
        let days = (seconds - daySeconds) / 86_400
        let (year, month, day) = Timestamp.civilFromDays(Int(days))
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) \(pad(Int(daySeconds / 3600), 2)):"
            + "\(pad(Int(daySeconds / 60 % 60), 2)):\(pad(Int(daySeconds % 60), 2)).\(pad(Int(fraction), 6))"
    }

    package static func < (a: Self, b: Self) -> Bool { a.microseconds < b.microseconds }

    package static func - (time: Self, duration: Duration) -> Self {
        ServerTime(microseconds: time.microseconds - duration.inMicroseconds)
    }

    package static let distantPast = ServerTime(microseconds: 0)
}

extension MariaDBConnection {
    /// The member store's clock now (`UTC_TIMESTAMP(6)`).
    package func serverTime() throws -> ServerTime {
        guard let text = try query("SELECT CAST(UTC_TIMESTAMP(6) AS CHAR)").first?.string(0), let time = ServerTime(text) else {
            throw MemberStoreError(.corruptRow, "the server returned no time")
        }
        return time
    }
}
