import Foundation
import CoreMetrics
import Logging
import MariaDBClient
import MemberStore
import Scoring
import ScoreStore

/// Why a job failed, sorted by what the worker should do about it.
public struct GenerationFailure: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The member's stored data breaks the engine's rules: retrying cannot help.
        case badData
        /// MySQL is unreachable: hand the job back and pause.
        case mysqlUnavailable
        /// The member's shard is unreachable (or none is active): retry later.
        case shardUnavailable
        /// Anything else: retry with backoff.
        case failed
    }

    public let kind: Kind
    /// What failed, without member data.
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Sorts an error thrown by the stores.
    static func classify(_ error: any Error) -> GenerationFailure {
        switch error {
        case let failure as GenerationFailure:
            return failure
        case let error as MemberStoreError:
            switch error.code {
            case .corruptRow: return GenerationFailure(.badData, "stored member breaks the rules: \(error.message)")
            case .unavailable: return GenerationFailure(.mysqlUnavailable, "MySQL unavailable: \(error.message)")
            case .noActiveShard: return GenerationFailure(.shardUnavailable, error.message)
            default: return GenerationFailure(.failed, "\(error)")
            }
        case let error as MariaDBError where error.isConnectionLost:
            return GenerationFailure(.mysqlUnavailable, "MySQL unavailable: \(error)")
        case let error as ScoreStoreError:
            if error.code == .shardUnavailable || error.isTransportFailure {
                return GenerationFailure(.shardUnavailable, "\(error)")
            }
            return GenerationFailure(.failed, "\(error)")
        case let error as MemberValidationError:
            return GenerationFailure(.badData, "stored member breaks the rules: \(error)")
        default:
            return GenerationFailure(.failed, "\(error)")
        }
    }
}

/// Times the phases of one job into ``KindredMetrics/jobPhase(_:)``.
struct PhaseClock {
    let metrics: KindredMetrics
    var last = ContinuousClock.now

    mutating func lap(_ phase: String) {
        let now = ContinuousClock.now
        let elapsed = now - last
        metrics.jobPhase(phase).recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        last = now
    }
}

/// What a job did.
public enum GenerationOutcome: Sendable, Hashable {
    /// The member's set was written and offered to their matches.
    case generated(shard: UInt32, matches: Int, offers: ScoreStore.OfferStats, candidates: Int)
    /// The member is deleted (or gone): their set and their entries in
    /// others' sets were removed.
    case removed(holders: Int)
}

/// The job: regenerate one member's matches. One generator per thread: it
/// owns that thread's MySQL connection and match finders; the rest comes
/// from the shared ``PipelineContext``.
///
/// Every step is idempotent, so a job done twice (a worker killed after
/// writing but before completing) is harmless:
/// 1. read the member from MySQL (the truth); gone or deleted: remove;
/// 2. bring the shared snapshot up to date with that record;
/// 3. score them against every candidate, keep the top N;
/// 4. give them a shard if they have none;
/// 5. write the set (atomic replacement) and offer their score to each match;
/// 6. record the generated answers version in MySQL.
public final class Generator {
    /// How a generator works; the default is the worker's.
    public struct Options: Sendable {
        /// Offer the member's score to each of their matches' sets (step 5).
        /// Redundant, and skipped by `kindred backfill`, when every member's
        /// own set is being rebuilt from the same population anyway.
        public var reciprocalOffers = true
        /// Which of the member's matches to offer to (all when nil): a
        /// backfill leaves out sets that already account for the member's
        /// current record. Called on the generator's thread; a thrown error
        /// fails the job like a store error.
        public var offerTargets: (@Sendable (_ member: MemberID, _ matches: [Match]) throws -> [Match])?

        public init(
            reciprocalOffers: Bool = true,
            offerTargets: (@Sendable (_ member: MemberID, _ matches: [Match]) throws -> [Match])? = nil
        ) {
            self.reciprocalOffers = reciprocalOffers
            self.offerTargets = offerTargets
        }
    }

    public let context: PipelineContext
    public let options: Options
    private var database: MariaDBConnection?
    private let finder: MatchFinder
    /// Every candidate (up to a million), to find who may hold a deleted member.
    private let everyone: MatchFinder

    public init(context: PipelineContext, options: Options = Options()) {
        self.context = context
        self.options = options
        finder = MatchFinder(settings: context.settings.scoring)
        var all = context.settings.scoring
        all.topN = 1_000_000
        all.minScore = 0
        everyone = MatchFinder(settings: all)
    }

    deinit { database?.close() }

    /// Regenerates (or removes) `id`'s set.
    public func regenerate(_ id: MemberID) throws(GenerationFailure) -> GenerationOutcome {
        do {
            return try run(id)
        } catch {
            throw GenerationFailure.classify(error)
        }
    }

    private func run(_ id: MemberID) throws -> GenerationOutcome {
        let survey = context.survey
        var phases = PhaseClock(metrics: context.metrics)
        guard let record = try mysql({ try MemberRepository(connection: $0, survey: survey).member(id) }) else {
            phases.lap("read")
            let outcome = try remove(id)
            phases.lap("remove")
            return outcome
        }
        phases.lap("read")
        let settings = context.settings.scoring
        let population = context.population
        if population.read({ $0.member(id) }) != record {
            try population.write { try $0.upsert(record) }
        }
        let matches = try population.read { (population) throws(MemberValidationError) -> [Match] in
            try finder.matches(for: record, in: population)
        }
        let candidates = finder.lastScan.candidates
        phases.lap("scan")
        let shard = try context.directory.assign(id)
        phases.lap("assign")
        let version = AnswersVersion.of(record, survey: survey)
        try context.scores.writeSet(id, shard: shard, matches: matches, stamp: String(version), limit: settings.topN)
        context.metrics.scoresWritten.increment(by: matches.count)
        phases.lap("write")
        guard options.reciprocalOffers else {
            return try recordGeneration(id, shard: shard, version: version, matches: matches, offers: ScoreStore.OfferStats(), candidates: candidates, phases: &phases)
        }
        let targets = try options.offerTargets?(id, matches) ?? matches
        try context.directory.prefetch(targets.map(\.id))
        let offers = context.scores.offer(
            from: id, entries: targets, limit: settings.topN, shardOf: context.directory.cachedShard(of:))
        phases.lap("offers")
        if offers.failed > 0 {
            context.logger.warning(
                "some offers failed", metadata: ["member": "\(id)", "failed": "\(offers.failed)", "error": "\(offers.errors.first.map { "\($0)" } ?? "")"])
        }
        return try recordGeneration(id, shard: shard, version: version, matches: matches, offers: offers, candidates: candidates, phases: &phases)
    }

    /// Step 6: records the generation in MySQL.
    private func recordGeneration(
        _ id: MemberID, shard: UInt32, version: UInt64, matches: [Match], offers: ScoreStore.OfferStats, candidates: Int,
        phases: inout PhaseClock
    ) throws -> GenerationOutcome {
        let generation = Generation(
            memberID: id, shardID: shard, answersVersion: version,
            generatedAt: Int64(Date().timeIntervalSince1970 * 1000), matchCount: matches.count)
        try mysql { try GenerationStore(connection: $0).record(generation) }
        phases.lap("record")
        return .generated(shard: shard, matches: matches.count, offers: offers, candidates: candidates)
    }

    /// A deleted (or vanished) member: drop their set, take them out of every
    /// set that may hold them, forget their bookkeeping and shard.
    ///
    /// Who may hold them: every candidate of theirs (the hard filters and
    /// the score are symmetric, so only a candidate can have them in a top
    /// N), from their last record in the snapshot or the graveyard, plus
    /// everyone their own set names (covers sets computed from older data).
    private func remove(_ id: MemberID) throws -> GenerationOutcome {
        let population = context.population
        let record = population.read { $0.member(id) } ?? context.graveyard.record(of: id)
        var holders = Set<MemberID>()
        if let record {
            let all = try population.read { (population) throws(MemberValidationError) -> [Match] in
                try everyone.matches(for: record, in: population)
            }
            holders.formUnion(all.map(\.id))
        }
        let generation = try mysql { try GenerationStore(connection: $0).generation(of: id) }
        let shard = try context.directory.shard(of: id) ?? generation?.shardID
        if let shard, let own = try context.scores.readSet(id, shard: shard, cutToLimit: false) {
            holders.formUnion(own.matches.map(\.id))
        }
        let targets = Array(holders)
        try context.directory.prefetch(targets)
        let removal = context.scores.removeEntries(of: id, from: targets, shardOf: context.directory.cachedShard(of:))
        if let error = removal.errors.first { throw error }
        if let shard { _ = try context.scores.removeSet(id, shard: shard) }
        try mysql { try GenerationStore(connection: $0).forget(id) }
        try context.directory.release(id)
        if population.read({ $0.contains(id) }) {
            population.write { _ = $0.remove(id) }
        }
        context.graveyard.forget(id)
        return .removed(holders: removal.removed)
    }

    /// Runs `body` on this thread's MySQL connection, reconnecting with
    /// backoff on a lost connection within the settings' budget.
    private func mysql<T>(_ body: (MariaDBConnection) throws -> T) throws -> T {
        let connection: MariaDBConnection
        if let database {
            connection = database
        } else {
            do {
                connection = try context.connectMySQL()
            } catch {
                throw GenerationFailure(.mysqlUnavailable, "MySQL unavailable: \(error)")
            }
            database = connection
        }
        return try connection.withRetry(policy: context.settings.mysqlRetry, body)
    }
}
