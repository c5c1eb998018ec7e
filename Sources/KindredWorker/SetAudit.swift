import CoreMetrics
import Foundation
import KindredCore
import Logging
import MemberStore
import ScoreStore
import Scoring
import Synchronization
import WorkQueue

extension Maintenance {
    /// Finds what the shards forgot or hold wrongly, without an operator,
    /// each interval:
    /// - every set MySQL records must be on its shard, written by the
    ///   generation MySQL records (its answers version and write time): a set missing,
    ///   older or newer than the record (a shard restored from an older
    ///   copy, a write lost in a failover), written before floors were kept,
    ///   or cut below N is queued for rebuild;
    /// - every set on a shard must belong there: a set whose member the
    ///   directory places elsewhere (or nowhere) and MySQL does not record
    ///   there is an orphan, and is removed (after a grace period, so a
    ///   write in flight is never taken for one);
    /// - a sample of sets is recomputed from the snapshot and compared with
    ///   what the shard holds, entry by entry (the self-check): a mismatch
    ///   that no recent change explains is logged, counted
    ///   (`kindred_set_audit_mismatches_total`) and rebuilt.
    package static func setAudit(_ runtime: WorkerRuntime) -> ThreadsService {
        let core = runtime.core
        let audit = SetAuditState(runtime: runtime)
        return periodicService(name: "set-audit", interval: runtime.settings.auditInterval, logger: core.logger, sessions: core.sessions) { session in
            try audit.run(session)
        }
    }
}

/// The audit's state between runs: snapshot versions by time, to tell
/// which members changed recently.
final class SetAuditState: Sendable {
    let runtime: WorkerRuntime
    var core: GenerationCore { runtime.core }
    /// Used by the audit's periodic thread (and a test's `runOnce()`): uncontended.
    private let versions = Mutex<[(at: ContinuousClock.Instant, version: Int)]>([])
    /// A sampled set compares only entries of members that did not change
    /// for this long (their publication may be on its way).
    let quiet: Duration
    /// Orphans younger than this are left alone (a write may be in flight).
    let orphanGrace: Int64 = 120

    init(runtime: WorkerRuntime, quiet: Duration = .seconds(60)) {
        self.runtime = runtime
        self.quiet = quiet
    }

    func run(_ session: ThreadSession) throws {
        let now = ContinuousClock.now
        let version = core.population.version
        versions.withLock { versions in
            versions.append((now, version))
            versions.removeAll { now - $0.at > quiet * 4 }
        }
        let shards = try session.database { try $0.shards.list() }
        var rebuild: [MemberID] = []
        var sample: [(MemberID, UInt32)] = []
        for shard in shards where shard.state != .down {
            let (lost, wrong, recorded) = try checkRecorded(shard: shard.id, session)
            rebuild += lost + wrong
            if !lost.isEmpty || !wrong.isEmpty {
                core.logger.warning(
                    "sets missing or not the ones MySQL records: queued for rebuild",
                    metadata: ["shard": "\(shard.id)", "missing": "\(lost.count)", "other": "\(wrong.count)"])
            }
            let orphans = try removeOrphans(shard: shard.id, session)
            if orphans > 0 {
                core.logger.warning("removed sets of members the shard no longer holds", metadata: ["shard": "\(shard.id)", "sets": "\(orphans)"])
            }
            sample += recorded.shuffled().prefix(runtime.settings.auditSample).map { ($0, shard.id) }
        }
        sample = Array(sample.shuffled().prefix(runtime.settings.auditSample))
        rebuild += try selfCheck(sample, session)
        if !rebuild.isEmpty {
            try session.queue { _ = try runtime.queue.enqueue(Array(Set(rebuild)).sorted(), priority: .repair, on: $0) }
        }
    }

    /// Sets MySQL records on the shard: missing ones, and ones whose meta
    /// is not the recorded generation (or cannot be kept exact); returns
    /// the recorded members too (the self-check samples them).
    private func checkRecorded(shard: UInt32, _ session: ThreadSession) throws -> ([MemberID], [MemberID], [MemberID]) {
        var after: MemberID = 0
        var missing: [MemberID] = []
        var wrong: [MemberID] = []
        var recorded: [MemberID] = []
        let limit = core.settings.scoring.topN
        while true {
            let generations = try session.database { try $0.generations.generations(onShard: shard, after: after, limit: 5000) }
            guard let last = generations.last else { break }
            let metas = try core.scores.readMetas(generations.map(\.memberID), shard: shard)
            for (generation, meta) in zip(generations, metas) {
                recorded.append(generation.memberID)
                guard let meta else {
                    missing.append(generation.memberID)
                    continue
                }
                // A job writes the set, then records that write with the same time: a set older than its
                // record is a write the shard lost (a restore from an older copy, a failover before the
                // write reached the replica), rebuilt at once. A write newer than its record is one in
                // flight (or a record lost): both settle by a rebuild only when they differ for long.
                let sameWrite = meta.answersVersion == String(generation.answersVersion) && meta.generatedAt == generation.generatedAt / 1000
                let lostWrite = meta.generatedAt < generation.generatedAt / 1000
                if lostWrite || !sameWrite && Int64(Date().timeIntervalSince1970) - meta.generatedAt > orphanGrace || meta.isLegacy
                    || (meta.limit == limit && meta.needsRefill)
                {
                    wrong.append(generation.memberID)
                }
            }
            after = last.memberID
        }
        return (missing, wrong, recorded)
    }

    /// Removes sets on the shard whose member it does not hold: neither the
    /// directory nor the generation record places them there.
    private func removeOrphans(shard: UInt32, _ session: ThreadSession) throws -> Int {
        var removed = 0
        let nowSeconds = Int64(Date().timeIntervalSince1970)
        try core.scores.scanSetOwners(shard: shard) { owners in
            let placements = try session.database { try $0.placements(of: owners) }
            let strays = owners.filter { placements[$0]?.assigned != shard && placements[$0]?.recorded != shard }
            guard !strays.isEmpty else { return }
            let metas = try core.scores.readMetas(strays, shard: shard)
            for (owner, meta) in zip(strays, metas) {
                guard let meta, nowSeconds - meta.generatedAt > orphanGrace else { continue }
                if try core.scores.removeSet(owner, shard: shard) { removed += 1 }
            }
        }
        return removed
    }

    /// Recomputes sampled sets from the snapshot and compares them with the
    /// shard, entry by entry; returns the ones to rebuild.
    private func selfCheck(_ sample: [(MemberID, UInt32)], _ session: ThreadSession) throws -> [MemberID] {
        guard !sample.isEmpty else { return [] }
        // Members changed within the quiet period (or whose publication is
        // due) may legitimately differ from the snapshot for a while.
        let now = ContinuousClock.now
        let since = versions.withLock { $0.last { now - $0.at >= quiet }?.version }
        guard let since, let recent = core.population.changedMembers(since: since) else { return [] }
        var recentlyChanged = Set(recent)
        let survey = core.survey
        let settings = core.settings.scoring
        // A set holds at most N + S + W entries; one more tells a set that is
        // missing entries above its floor (or claims every candidate) apart.
        var finderSettings = settings
        finderSettings.topN = core.scores.configuration.largestSet(forLimit: settings.topN) + 1
        let finder = MatchFinder(settings: finderSettings)
        var rebuild: [MemberID] = []
        for (member, shard) in sample {
            guard let set = try core.scores.readSet(member, shard: shard, cutToLimit: false) else { continue }
            guard let record = core.population.read({ $0.member(member) }),
                set.meta.answersVersion == String(AnswersVersion.of(record, survey: survey)), !recentlyChanged.contains(member)
            else { continue }
            let expected = try core.population.read { (population) throws(MemberValidationError) -> [Match] in
                try finder.matches(for: record, in: population)
            }
            let floorKey = set.meta.floor.map { SetIndex.rankKey(tenths: Int($0.tenths), id: $0.id) } ?? .max
            let want = expected.filter { SetIndex.rankKey(tenths: Int($0.tenths), id: $0.id) <= floorKey }
            let differing = Set(set.matches).symmetricDifference(want).map(\.id)
            guard !differing.isEmpty else {
                core.metrics.auditChecked.increment()
                continue
            }
            let pending = try session.database {
                try $0.publications.pendingPublication(among: Array(Set(differing)))
            }
            recentlyChanged.formUnion(pending)
            let unexplained = Set(differing).subtracting(recentlyChanged)
            core.metrics.auditChecked.increment()
            guard !unexplained.isEmpty else { continue }
            core.metrics.auditMismatches.increment()
            core.logger.error(
                "self-check: a stored set differs from its recomputation: rebuilding it",
                metadata: [
                    "member": "\(member)", "shard": "\(shard)", "differing_entries": "\(unexplained.count)",
                    "stored": "\(set.matches.count)", "expected": "\(want.count)",
                ])
            rebuild.append(member)
        }
        return rebuild
    }
}
