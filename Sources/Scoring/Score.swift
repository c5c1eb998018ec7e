/// The final arithmetic of SCORING.md, shared by every code path that turns a
/// pair's integer sums into a score.
public enum Score {
    /// The score in tenths (0 ... 100) of a pair with common-question count
    /// `n` and the integer sums `sA, dA, sB, dB`; nil when the pair has no
    /// score (`n < minCommon`, `dA == 0` or `dB == 0`).
    ///
    /// Follows SCORING.md literally: the integer products first, one division
    /// of their `Double`s, one square root, minus `1/n`, then
    /// `floor(100 m + 0.5)` clamped to 0 ... 100.
    @inlinable @inline(__always)
    public static func tenths(n: Int, sA: Int64, dA: Int64, sB: Int64, dB: Int64, minCommon: Int) -> Int? {
        if n < minCommon || dA == 0 || dB == 0 { return nil }
        return tenths(n: n, sA: sA, dA: dA, sB: sB, dB: dB)
    }

    /// The clamped tenths for a pair known to have a score (`n >= 1`,
    /// `dA > 0`, `dB > 0`).
    @inlinable @inline(__always)
    public static func tenths(n: Int, sA: Int64, dA: Int64, sB: Int64, dB: Int64) -> Int {
        let m = (Double(sA &* sB) / Double(dA &* dB)).squareRoot() - 1.0 / Double(n)
        let t = (100.0 * m + 0.5).rounded(.down)
        return Int(min(100.0, max(0.0, t)))
    }

    /// `t / 10` with exactly one decimal: `0.0`, `7.3`, `10.0`.
    public static func format(tenths: Int) -> String {
        precondition((0...100).contains(tenths), "a score is 0 to 100 tenths")
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// The tenths a stored score string stands for; nil unless it is exactly
    /// `D.D` or `10.0` as ``format(tenths:)`` writes it.
    public static func parse<Bytes: Collection<UInt8>>(utf8 bytes: Bytes) -> Int? {
        var value = 0
        var digitsBeforePoint = 0
        var sawPoint = false
        var digitsAfterPoint = 0
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                if sawPoint { digitsAfterPoint += 1 } else { digitsBeforePoint += 1 }
            case UInt8(ascii: ".") where !sawPoint:
                sawPoint = true
            default:
                return nil
            }
        }
        guard sawPoint, digitsAfterPoint == 1, (1...2).contains(digitsBeforePoint), value <= 100 else { return nil }
        if digitsBeforePoint == 2 && value < 100 { return nil }  // "09.5" is not how scores are written
        return value
    }

    public static func parse(_ text: String) -> Int? { parse(utf8: text.utf8) }
}

/// One of a member's matches: the other member and the score in tenths.
public struct Match: Sendable, Hashable {
    public var id: MemberID
    public var tenths: UInt8

    public init(id: MemberID, tenths: Int) {
        self.id = id
        self.tenths = UInt8(tenths)
    }

    /// The stored and served form: one decimal, `"7.3"`.
    public var score: String { Score.format(tenths: Int(tenths)) }

    /// SCORING.md's rank order: score descending, then id ascending.
    @inlinable
    public static func ranksBefore(_ a: Match, _ b: Match) -> Bool {
        a.tenths != b.tenths ? a.tenths > b.tenths : a.id < b.id
    }
}
