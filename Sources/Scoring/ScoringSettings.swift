/// The settings SCORING.md names: how many matches to keep, the lowest score
/// kept, and how many common questions a pair needs.
public struct ScoringSettings: Sendable, Hashable {
    /// `N`: matches kept per member (default 5000).
    public var topN: Int
    /// `MIN_SCORE` in tenths (0 ... 100): matches need `t >= minScore`.
    public var minScore: Int
    /// `MIN_COMMON`: a pair with fewer common questions has no score.
    public var minCommon: Int

    public static let `default` = ScoringSettings(topN: 5000, minScore: 0, minCommon: 5)

    public init(topN: Int = 5000, minScore: Int = 0, minCommon: Int = 5) {
        self.topN = topN
        self.minScore = minScore
        self.minCommon = minCommon
    }

    /// Checks the ranges; a bad setting is named in the error.
    public func validated() throws(SettingsError) -> ScoringSettings {
        guard topN >= 1 && topN <= 1_000_000 else { throw SettingsError("top N must be 1 to 1000000, not \(topN)") }
        guard (0...100).contains(minScore) else {
            throw SettingsError("min score is in tenths and must be 0 to 100, not \(minScore)")
        }
        guard (1...Survey.questionLimit.upperBound).contains(minCommon) else {
            throw SettingsError("min common must be 1 to 512, not \(minCommon)")
        }
        return self
    }
}

public struct SettingsError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
