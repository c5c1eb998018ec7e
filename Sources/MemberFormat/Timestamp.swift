/// RFC 3339 UTC timestamps as the import format writes them
/// (`2026-10-03T18:22:05Z`), to and from seconds since the Unix epoch.
/// Pure arithmetic (proleptic Gregorian calendar), no Foundation.
package enum Timestamp {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00|-00:00)`; `T` and `Z`
    /// may be lower case. A fraction is truncated to whole seconds. Nil for
    /// anything else, including a date that does not exist and non-UTC offsets.
    package static func parse<Bytes: RandomAccessCollection<UInt8>>(_ text: Bytes) -> Int64? where Bytes.Index == Int {
        let s = text
        let b = s.startIndex
        guard s.count >= 20 else { return nil }
        func digits(_ from: Int, _ count: Int) -> Int? {
            var value = 0
            for i in from..<from + count {
                let c = s[b + i]
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(c - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = digits(0, 4), s[b + 4] == UInt8(ascii: "-"),
            let month = digits(5, 2), s[b + 7] == UInt8(ascii: "-"),
            let day = digits(8, 2), s[b + 10] == UInt8(ascii: "T") || s[b + 10] == UInt8(ascii: "t"),
            let hour = digits(11, 2), s[b + 13] == UInt8(ascii: ":"),
            let minute = digits(14, 2), s[b + 16] == UInt8(ascii: ":"),
            let second = digits(17, 2)
        else { return nil }
        var i = 19
        if s[b + i] == UInt8(ascii: ".") {
            i += 1
            let start = i
            while i < s.count, s[b + i] >= UInt8(ascii: "0"), s[b + i] <= UInt8(ascii: "9") { i += 1 }
            guard i > start else { return nil }
        }
        guard i < s.count else { return nil }
        let zone = s[b + i]
        if zone == UInt8(ascii: "Z") || zone == UInt8(ascii: "z") {
            guard i + 1 == s.count else { return nil }
        } else if zone == UInt8(ascii: "+") || zone == UInt8(ascii: "-") {
            guard i + 6 == s.count, digits(i + 1, 2) == 0, s[b + i + 3] == UInt8(ascii: ":"), digits(i + 4, 2) == 0
            else { return nil }
        } else {
            return nil
        }
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
            (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second)
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        return Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    package static func parse(_ text: String) -> Int64? { parse(Array(text.utf8)) }

    /// `YYYY-MM-DDTHH:MM:SSZ` for years 0 ... 9999.
    package static func format(_ seconds: Int64) -> String {
        var bytes: [UInt8] = []
        append(seconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the formatted timestamp without allocating a String.
    package static func append(_ seconds: Int64, to out: inout [UInt8]) {
        let days = Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400)
        let rest = Int(seconds - Int64(days) * 86_400)
        let (year, month, day) = civilFromDays(days)
        func put(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var v = value
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(v / divisor % 10))
                v %= divisor
                divisor /= 10
            }
        }
        put(year, 4); out.append(UInt8(ascii: "-"))
        put(month, 2); out.append(UInt8(ascii: "-"))
        put(day, 2); out.append(UInt8(ascii: "T"))
        put(rest / 3600, 2); out.append(UInt8(ascii: ":"))
        put(rest / 60 % 60, 2); out.append(UInt8(ascii: ":"))
        put(rest % 60, 2); out.append(UInt8(ascii: "Z"))
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    package static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The date (year, month, day) of a day number from ``daysFromCivil(year:month:day:)``.
    package static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
