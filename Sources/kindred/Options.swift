import ArgumentParser
import Foundation
import KindredConfig
import Scoring

/// Options every program shares: where the configuration comes from.
struct ConfigOptions: ParsableArguments {
    @Option(help: "A JSON config file (default: $KINDRED_CONFIG). Environment variables override it, flags override both.")
    var config: String?

    /// The layered configuration: file < environment < the given flag overrides.
    func load() async throws -> KindredConfiguration {
        try await KindredConfiguration.load(file: config, environment: ProcessInfo.processInfo.environment)
    }
}

/// SCORING.md's settings as flags (each overrides KINDRED_TOP_N, ...).
struct ScoringOptions: ParsableArguments {
    @Option(name: .customLong("top-n"), help: "Matches kept per member, N (default 5000; $KINDRED_TOP_N).")
    var topN: Int?

    @Option(name: .customLong("min-score"), help: "Lowest score kept, in tenths 0-100 (default 0; $KINDRED_MIN_SCORE).")
    var minScore: Int?

    @Option(name: .customLong("min-common"), help: "Common questions a pair needs (default 5; $KINDRED_MIN_COMMON).")
    var minCommon: Int?

    /// `base` with the flags that were given applied, validated.
    func apply(to base: ScoringSettings) throws -> ScoringSettings {
        var settings = base
        if let topN { settings.topN = topN }
        if let minScore { settings.minScore = minScore }
        if let minCommon { settings.minCommon = minCommon }
        do {
            return try settings.validated()
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// Writes a line to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
