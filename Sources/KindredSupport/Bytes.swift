/// Byte sizes for people and from them.
package enum Bytes {
    /// `512MB`, `2GiB`, `1.5GB`, `1048576`: decimal (kB, MB, GB, TB: powers
    /// of 1000) and binary (KiB, MiB, GiB, TiB: powers of 1024) units; a
    /// bare number is bytes. Case-insensitive; `K`, `M`, `G` alone are binary.
    package static func parse(_ text: String) -> UInt64? {
        let trimmed = trimmingBlanks(Substring(text))
        let split = trimmed.firstIndex(where: { !($0.isNumber || $0 == ".") }) ?? trimmed.endIndex
        guard let number = Double(trimmed[..<split]), number >= 0 else { return nil }
        let units: [String: Double] = [
            "": 1, "b": 1,
            "k": 1024, "kb": 1000, "kib": 1024,
            "m": 1_048_576, "mb": 1_000_000, "mib": 1_048_576,
            "g": 1_073_741_824, "gb": 1_000_000_000, "gib": 1_073_741_824,
            "t": 1_099_511_627_776, "tb": 1_000_000_000_000, "tib": 1_099_511_627_776,
        ]
        let unit = trimmingBlanks(trimmed[split...]).lowercased()
        guard let multiplier = units[unit] else { return nil }
        let bytes = (number * multiplier).rounded()
        guard bytes < 1.8e19 else { return nil }
        return UInt64(bytes)
    }

    /// `12.3 MB` (powers of 1000, as `parse` reads `MB`).
    package static func text(_ bytes: Int) -> String {
        let value = Double(bytes)
        for (unit, size) in [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)] where abs(value) >= size {
            return oneDecimal(value / size) + " " + unit
        }
        return "\(bytes) B"
    }

    /// `text` without the spaces and tabs around it.
    private static func trimmingBlanks(_ text: Substring) -> Substring {
        func blank(_ character: Character) -> Bool { character.isWhitespace && !character.isNewline }
        var text = text
        while let first = text.first, blank(first) { text.removeFirst() }
        while let last = text.last, blank(last) { text.removeLast() }
        return text
    }

    /// `12.3`: one decimal, rounded to the nearest (ties to even).
    private static func oneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded(.toNearestOrEven))
        let sign = tenths < 0 ? "-" : ""
        return "\(sign)\(abs(tenths) / 10).\(abs(tenths) % 10)"
    }
}
