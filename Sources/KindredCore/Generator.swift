import Foundation
import CoreMetrics
import KindredSupport
import Logging
import MemberStore
import Scoring
import ScoreStore

/// Why a job failed, sorted by what the worker should do about it.
package struct GenerationFailure: Error, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Hashable {
        /// The member's stored data breaks the engine's rules: retrying cannot help.
        case badData
        /// MySQL is unreachable: hand the job back and pause.
        case mysqlUnavailable
        /// The member's shard (or a shard a correction goes to) is
        /// unreachable, or none is active: retry later.
        case shardUnavailable
        /// Another job is publishing this member's change right now: retry
        /// shortly, without using up an attempt.
        case busy
        /// Anything else: retry with backoff.
        case failed
    }

    package let kind: Kind
    /// What failed, without member data.
    package let message: String

    package init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    package var description: String { message }

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
        case let error where StoreSession.isConnectionLost(error):
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
        metrics.jobPhase(phase).recordNanoseconds(elapsed.inNanoseconds)
        last = now
    }
}

/// What a publication (and a set's catch-up) did.
package struct PublicationStats: Sendable, Hashable {
    /// A publication of the member's change ran.
    package var published = false
    /// Sets that rank (or ranked) the member: candidates of any standing
    /// record or of the current one, holding a set.
    package var considered = 0
    /// Skipped: the set's scan already covered the change.
    package var skippedCovered = 0
    /// Skipped: the pair's score and candidacy are what the set has.
    package var skippedUnchanged = 0
    /// Skipped: below the set's floor before and after.
    package var skippedBelowFloor = 0
    /// Placements sent for the publication.
    package var placed = 0
    /// Placements sent into the member's own new set for members that
    /// changed while it was scanned and written.
    package var catchUp = 0
    /// Replies per outcome (publication and catch-up).
    package var outcomes: [ScoreStore.PlacementOutcome: Int] = [:]

    package init() {}

    package func count(_ outcome: ScoreStore.PlacementOutcome) -> Int { outcomes[outcome] ?? 0 }
}

/// What a job did.
package struct GenerationOutcome: Sendable {
    package enum Kind: Sendable, Hashable {
        /// The member's own set was written (and their change published
        /// where due).
        case generated
        /// Only the member's change was published: they hold no set of
        /// their own (dormant, or evicted).
        case publishedOnly
        /// The member is deleted (or gone): their set was removed and their
        /// entries taken out of every set that held them.
        case removed
    }

    package var kind: Kind
    /// Where the member's own set was written.
    package var shard: UInt32?
    /// Matches in the member's own set (the first N of it).
    package var matches = 0
    /// Candidates the scan scored.
    package var candidates = 0
    package var publication = PublicationStats()
    /// Sets found needing a rebuild: fewer than N entries left (not every
    /// candidate), or written before floors were kept. Queue them.
    package var rebuild: [MemberID] = []
}

/// The job: bring one member's matches, and every other set's view of the
/// member, in line with MySQL. One generator per thread: it works in that
/// thread's ``MemberStore/StoreSession`` (made by the thread) with match
/// finders of its own; the rest comes from the shared ``GenerationCore``.
///
/// A job (SCORING.md, "Matches while the population changes"):
/// 1. takes the member's publication lock (when publishing), reads the
///    member and their published records from MySQL (the truth);
/// 2. refreshes the snapshot and the set index so that they hold everything
///    committed before the job began;
/// 3. when the member should hold a set: scans them against every
///    candidate, gives them a shard, writes the first N + slack of their
///    ranking (atomic replacement; the floor and what the scan covered are
///    recorded in MySQL), then places into it every member that changed
///    while it was scanned and written (the catch-up);
/// 4. when their change is not yet published: records the current record
///    as an intent, places the member into every set the change may
///    concern (the candidates of every standing record and of the current
///    one, less the sets whose floor they are below before and after, whose
///    pair is unchanged, or whose scan already saw the change), and settles;
/// 5. a deleted member: the same publication with no current record
///    (their entry leaves every set), then their own set, bookkeeping and
///    shard go.
///
/// Every step is idempotent, so a job done twice (a worker killed after
/// writing but before completing) is harmless, and an interrupted
/// publication leaves an intent that the next one honours.
package final class Generator {
    /// How a generator works; the default is the worker's.
    package struct Options: Sendable {
        /// Publish the member's change into other members' sets. The web
        /// backend's on-read rebuilds and backfill only rebuild the
        /// member's own set and leave publication to the worker.
        package var publish = true

        package init(publish: Bool = true) {
            self.publish = publish
        }
    }

    /// Whether a job writes the member's own set.
    package enum OwnSet: Sendable, Hashable {
        /// Always (a read, a login, an explicit request, backfill).
        case always
        /// Only when the member should hold a set (they hold a shard or a
        /// set, or were active at or after this Unix time and not evicted
        /// since) and theirs is not current: a change of a dormant member
        /// without a set is only published; a repair of a set that is fine
        /// writes nothing.
        case ifWanted(activeSince: Int64)
    }

    package let core: GenerationCore
    package let options: Options
    /// The thread's member store session: every MySQL visit of a job,
    /// the directory's included.
    let session: StoreSession
    /// Top N + S + W, and every scored candidate.
    let finder: MatchFinder
    /// Every scored candidate of a published record (its top list unused).
    let recordFinder: MatchFinder

    /// - Parameter session: the calling thread's session (a new one from
    ///   the core's factory when nil); used only on that thread.
    package init(core: GenerationCore, options: Options = Options(), session: StoreSession? = nil) {
        precondition(
            !options.publish || core.settings.publishes,
            "a publishing generator needs a process that follows the set index (GenerationSettings.publishes)")
        self.core = core
        self.options = options
        self.session = session ?? core.sessions.storeSession()
        var own = core.settings.scoring
        // The most a write stores; each member's own share is cut from it.
        own.topN = core.scores.configuration.largestSet(forLimit: own.topN)
        finder = MatchFinder(settings: own)
        var records = core.settings.scoring
        records.topN = 1
        recordFinder = MatchFinder(settings: records)
    }

    /// Rebuilds `id`'s own set (publishing their change too, when the
    /// options say so), or removes a deleted member.
    package func regenerate(_ id: MemberID) throws(GenerationFailure) -> GenerationOutcome {
        try process(id, ownSet: .always)
    }

    /// The job for `id`, writing their own set as `ownSet` says.
    package func process(_ id: MemberID, ownSet: OwnSet) throws(GenerationFailure) -> GenerationOutcome {
        do {
            return try run(id, ownSet: ownSet)
        } catch {
            throw GenerationFailure.classify(error)
        }
    }

    private func run(_ id: MemberID, ownSet: OwnSet) throws -> GenerationOutcome {
        let survey = core.survey
        var phases = PhaseClock(metrics: core.metrics)
        // One visit: the publication lock (when publishing), then everything
        // the job needs of the member (``MemberStore/StoreSession/jobState(of:publications:)``).
        var lock: PublicationLock?
        defer {
            if lock != nil { _ = try? session.withRetry(policy: core.settings.mysqlRetry) { try $0.publications.unlock(id) } }
        }
        let job = try mysql { session -> JobState in
            if options.publish {
                guard let taken = try session.lockPublication(of: id) else {
                    throw GenerationFailure(.busy, "another job is publishing member \(id)'s change")
                }
                lock = taken
            }
            return try session.jobState(of: id, publications: options.publish)
        }
        let state = job.publication
        core.directory.learned(id, shard: job.shard)
        phases.lap("read")
        // Everything committed before this point is in the snapshot and the set index after this.
        let began = ContinuousClock.now
        try mysql { try core.follower.refresh(startedAfter: began, in: $0) }
        phases.lap("refresh")
        guard let record = state.current else {
            return try remove(id, job: job, lock: lock, phases: &phases)
        }
        let version = AnswersVersion.of(record, survey: survey)
        try core.population.upsert(record, version: version)
        var outcome = GenerationOutcome(kind: .publishedOnly)
        var scan: (all: [Match], version: Int)? = nil
        if try ownSetDue(record, version: version, rule: ownSet, job: job) {
            scan = try writeOwnSet(record, version: version, into: &outcome, phases: &phases)
        }
        if options.publish && state.needsPublication {
            let placements = try publication(of: id, current: record, state: state, currentScan: scan, stats: &outcome.publication)
            phases.lap("publish-scan")
            try publish(id, current: record, state: state, placements: placements, lock: lock, into: &outcome)
            phases.lap("publish")
        }
        return outcome
    }

    /// Whether the job writes the member's own set: always when asked to;
    /// under ``OwnSet/ifWanted(activeSince:)``, when the member should hold
    /// a set and the one on their shard is missing, stale, cut below N or
    /// written before floors were kept.
    /// The shard, and the eviction, are the job read's (MySQL at the job's start).
    private func ownSetDue(_ record: Member, version: UInt64, rule: OwnSet, job: JobState) throws -> Bool {
        guard case .ifWanted(let activeSince) = rule else { return true }
        if let shard = job.shard {
            guard let meta = try core.scores.readMeta(record.id, shard: shard) else { return true }
            return meta.answersVersion != String(version) || meta.isLegacy || meta.needsRefill
        }
        if core.sets?.entry(of: record.id) != nil { return true }
        guard let lastActive = record.lastActive, lastActive >= activeSince else { return false }
        return job.evictedAt.map { $0 <= lastActive } ?? true
    }

    /// Step 3: scans, writes the first N + S (+ the member's share of W,
    /// ``ScoreStore/Configuration/writtenSize(forLimit:member:)``) of the
    /// ranking, records it,
    /// and catches up on members that changed meanwhile. Returns every
    /// scored candidate and the snapshot version they were scored at (the
    /// publication's current scores, while the snapshot stays there).
    private func writeOwnSet(
        _ record: Member, version: UInt64, into outcome: inout GenerationOutcome, phases: inout PhaseClock
    ) throws -> (all: [Match], version: Int) {
        let id = record.id
        let settings = core.settings.scoring
        let stored = core.scores.configuration.writtenSize(forLimit: settings.topN, member: id)
        // What the snapshot holds at least, taken before the scan.
        let covered = core.follower.coveredUntil
        let (ranked, all, scannedAt) = try core.population.read(withVersion: {
            (population, version) throws(MemberValidationError) -> ([Match], [Match], Int) in
            let found = try finder.matchesCollectingAll(for: record, in: population)
            return (found.top, found.all, version)
        })
        let top = Array(ranked.prefix(stored))
        let complete = finder.lastScan.scored <= stored
        outcome.candidates = finder.lastScan.candidates
        phases.lap("scan")
        let shard = try core.directory.assign(id, in: session)
        phases.lap("assign")
        let answersVersion = String(version)
        let generatedAt = Date()
        try core.scores.writeSet(
            id, shard: shard, matches: top, answersVersion: answersVersion, limit: settings.topN, complete: complete,
            generatedAt: Int64(generatedAt.timeIntervalSince1970))
        core.metrics.scoresWritten.increment(by: top.count)
        phases.lap("write")
        let generation = Generation(
            memberID: id, shardID: shard, answersVersion: version,
            generatedAt: Int64(generatedAt.timeIntervalSince1970 * 1000), matchCount: min(top.count, settings.topN),
            floor: complete ? nil : top.last, coveredAt: covered)
        try mysql { try $0.generations.record(generation) }
        core.sets?.wrote(
            id,
            entry: SetIndex.Entry(
                shard: shard, floorKey: generation.floor.map { SetIndex.rankKey(tenths: Int($0.tenths), id: $0.id) } ?? .max,
                coveredAt: covered.microseconds, generatedAt: generation.generatedAt))
        phases.lap("record")
        outcome.kind = .generated
        outcome.shard = shard
        outcome.matches = min(top.count, settings.topN)
        try catchUp(record, answersVersion: answersVersion, shard: shard, scannedAt: scannedAt, into: &outcome)
        phases.lap("catch-up")
        return (all, scannedAt)
    }

    /// Places into the member's new set every member whose record changed
    /// after the scan (their own publications may have run before the set
    /// was written, and been overwritten by it). The refresh after the
    /// write makes the snapshot hold everything committed before it.
    private func catchUp(
        _ record: Member, answersVersion: String, shard: UInt32, scannedAt: Int, into outcome: inout GenerationOutcome
    ) throws {
        try mysql { try core.follower.refresh(in: $0) }
        guard let changed = core.population.changedMembers(since: scannedAt) else {
            throw GenerationFailure(.failed, "too many members changed while member \(record.id)'s set was written: retrying")
        }
        let others = changed.filter { $0 != record.id }
        guard !others.isEmpty else { return }
        let settings = core.settings.scoring
        let survey = core.survey
        let placements = core.population.read { population -> [ScoreStore.Placement] in
            others.map { other in
                var tenths: Int?
                if let member = population.member(other), let t = survey.outcome(record, member, settings: settings).tenths,
                    t >= settings.minScore
                {
                    tenths = t
                }
                return ScoreStore.Placement(target: record.id, member: other, tenths: tenths, answersVersion: answersVersion)
            }
        }
        let results = core.scores.place(placements, limit: settings.topN) { _ in shard }
        try absorb(results, placements: placements, into: &outcome)
        outcome.publication.catchUp += placements.count
    }

    /// Counts replies, collects sets to rebuild, and throws the first shard
    /// failure (the job is retried; every placement is safe to repeat).
    func absorb(_ results: ScoreStore.PlacementResults, placements: [ScoreStore.Placement], into outcome: inout GenerationOutcome) throws {
        let limit = core.settings.scoring.topN
        // Counted here and added to the metrics once per outcome: a counter
        // handle is looked up in the registry (its name and help checked)
        // each time it is made, which per placement took ~5% of a busy
        // worker's CPU.
        var counts = [Int](repeating: 0, count: ScoreStore.PlacementOutcome.allCases.count)
        for (placement, reply) in zip(placements, results.replies) {
            guard let reply else { continue }
            counts[reply.outcome.rawValue] += 1
            if reply.outcome == .legacy || reply.needsRefill(limit: limit) { outcome.rebuild.append(placement.target) }
        }
        for kind in ScoreStore.PlacementOutcome.allCases where counts[kind.rawValue] > 0 {
            outcome.publication.outcomes[kind, default: 0] += counts[kind.rawValue]
            core.metrics.placements(kind.name).increment(by: counts[kind.rawValue])
        }
        if let error = results.errors.first { throw error }
    }

    /// Step 5: a deleted (or vanished) member: their entry leaves every set
    /// (publication without a current record), then their own set, their
    /// bookkeeping and their shard go.
    private func remove(_ id: MemberID, job: JobState, lock: PublicationLock?, phases: inout PhaseClock) throws -> GenerationOutcome {
        let state = job.publication
        var outcome = GenerationOutcome(kind: .removed)
        if options.publish && state.needsPublication {
            let placements = try publication(of: id, current: nil, state: state, currentScan: nil, stats: &outcome.publication)
            try publish(id, current: nil, state: state, placements: placements, lock: lock, into: &outcome)
            phases.lap("publish")
        }
        // The shard and the generation as the job read found them.
        if let shard = job.shard ?? job.generation?.shardID { _ = try core.scores.removeSet(id, shard: shard) }
        try mysql { try $0.forgetSet(of: id) }
        core.directory.forget(id)
        core.population.remove(id)
        phases.lap("remove")
        return outcome
    }

    /// One visit on this thread's session, reconnecting with backoff on a
    /// lost connection within the settings' budget.
    func mysql<T>(_ body: (StoreSession) throws -> T) throws -> T {
        try session.withRetry(policy: core.settings.mysqlRetry, body)
    }
}
