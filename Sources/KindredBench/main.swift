import ArgumentParser
import Foundation
import KindredSupport
import Scoring
import Synthetic

/// Release-mode benchmarks (not tests): `swift run -c release kindred-bench <name>`.
/// (Started by the top-level call at the end of this file rather than
/// `@main`: a `main.swift` in a target with several files is top-level code.)
struct KindredBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kindred-bench",
        abstract: "Kindred's benchmarks. Build with -c release.",
        subcommands: [ScoringBench.self, StoreBench.self, ScoreStoreBench.self, ClusterStoreBench.self, RegistrationsBench.self, ChurnBench.self]
    )
}

/// Times one member's full scan (filters, scores, top-N) against a synthetic
/// population of each requested size, on one core.
struct ScoringBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scoring",
        abstract: "Milliseconds per member against 100k and 1M candidates, one core."
    )

    @Option(help: "Population sizes, comma-separated.")
    var candidates: String = "100000,1000000"

    @Option(help: "Members probed per size (the median is reported).")
    var probes: Int = 200

    @Option(help: "Population seed.")
    var seed: UInt64 = 1

    @Option(name: .customLong("top-n"))
    var topN: Int = 5000

    func run() throws {
        let sizes = candidates.split(separator: ",").compactMap { Int($0) }
        print("scoring benchmark: Q = 100, N = \(topN), \(probes) probes per size, seed \(seed), one core")
        for size in sizes {
            let synthetic = SyntheticPopulation(members: size, seed: seed)
            let population = Population(survey: synthetic.survey, capacity: size)
            let loadStart = ContinuousClock.now
            for i in 0..<size { try population.upsert(synthetic.member(i)) }
            let loadTime = ContinuousClock.now - loadStart
            let organizeStart = ContinuousClock.now
            population.organize()
            let organizeTime = ContinuousClock.now - organizeStart
            let finder = MatchFinder(settings: ScoringSettings(topN: topN))
            var rng = SplitMix64(seed: seed ^ 0xBEEF)
            var times: [Double] = []
            var candidateCounts: [Int] = []
            var slotCounts: [Int] = []
            var matchCounts: [Int] = []
            _ = finder.matches(forID: synthetic.firstID, in: population)  // warm up
            for _ in 0..<probes {
                let id = synthetic.firstID + MemberID(rng.int(in: 0...(size - 1)))
                let start = ContinuousClock.now
                let matches = finder.matches(forID: id, in: population)!
                let elapsed = ContinuousClock.now - start
                times.append(elapsed.inSeconds * 1e3)
                candidateCounts.append(finder.lastScan.candidates)
                slotCounts.append(finder.lastScan.slots)
                matchCounts.append(matches.count)
            }
            times.sort()
            let median = times[times.count / 2]
            let p90 = times[times.count * 9 / 10]
            let meanCandidates = Double(candidateCounts.reduce(0, +)) / Double(probes)
            let meanSlots = Double(slotCounts.reduce(0, +)) / Double(probes)
            let meanMatches = Double(matchCounts.reduce(0, +)) / Double(probes)
            let pairsPerSecond = Double(size) / (median / 1e3)
            let scoredPerSecond = meanCandidates / (median / 1e3)
            print(String(
                format: "%8d candidates: median %.2f ms/member, p90 %.2f ms; %.0fM pairs/s considered, %.1fM scored pairs/s; "
                    + "%.1f%% pass the filters (%.0f%% of the slots read), %.0f matches kept on average; load %.1f s, organize %.2f s, %.0f MB of columns",
                size, median, p90, pairsPerSecond / 1e6, scoredPerSecond / 1e6, 100 * meanCandidates / Double(size),
                100 * meanCandidates / meanSlots,
                meanMatches, loadTime.inSeconds,
                organizeTime.inSeconds,
                Double(population.columnBytes) / 1e6))
        }
    }
}

KindredBench.main()
