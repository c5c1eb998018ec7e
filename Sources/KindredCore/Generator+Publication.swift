import MemberStore
import Scoring
import ScoreStore

extension Generator {
    /// The placements that make every set agree with the member's change
    /// (`current` nil: the member is gone), and the counts of what was
    /// skipped.
    ///
    /// The sets that may hold the member, or should, are those of the
    /// candidates of every standing record (the symmetric filters and score
    /// mean only a candidate's set can rank a member) and of the current
    /// record. Of those, a placement is needed unless
    /// - the set's scan covered the change (it was computed from the
    ///   current record, after every earlier publication settled);
    /// - the pair is the same under every record (same score, or no
    ///   candidate either way): whatever was placed is right;
    /// - the member ranks below the set's floor under every record: not
    ///   there, and does not belong there. The floor known here is the one
    ///   written, at or below the real one (trims only raise it), so this
    ///   never skips a set that holds the member.
    func publication(
        of id: MemberID, current: Member?, state: PublicationState, currentScan: (all: [Match], version: Int)?,
        stats: inout PublicationStats
    ) throws -> [ScoreStore.Placement] {
        stats.published = true
        let standing = state.standing.compactMap(\.member)
        let threshold = state.agreedBy?.microseconds
        let recordFinder = self.recordFinder
        guard let sets = core.sets else { preconditionFailure("only a publishing process publishes (it keeps the set index)") }
        var counts = stats
        // Scores and the targets' answers versions come from one version of the snapshot.
        let placements = try core.population.read(withVersion: {
            (population, version) throws(MemberValidationError) -> [ScoreStore.Placement] in
            var currentAll: [Match] = []
            if let current {
                if let scan = currentScan, scan.version == version {
                    currentAll = scan.all
                } else {
                    currentAll = try recordFinder.matchesCollectingAll(for: current, in: population).all
                }
            }
            // The scores under each standing record, and every target (a
            // candidate under any record). A newcomer (no standing record)
            // needs none of these maps: its targets are its current
            // candidates, each new in every set (see the loop below).
            var newScores: [MemberID: UInt8] = [:]
            var oldScores: [[MemberID: UInt8]] = []
            var targets = Set<MemberID>()
            if !standing.isEmpty {
                newScores.reserveCapacity(currentAll.count)
                for match in currentAll { newScores[match.id] = match.tenths }
                targets = Set(newScores.keys)
                for record in standing {
                    let all = try recordFinder.matchesCollectingAll(for: record, in: population).all
                    var scores: [MemberID: UInt8] = [:]
                    scores.reserveCapacity(all.count)
                    for match in all { scores[match.id] = match.tenths }
                    targets.formUnion(scores.keys)
                    oldScores.append(scores)
                }
            }
            return sets.withEntries { entryOf in
                var placements: [ScoreStore.Placement] = []
                /// Appends the placement `target`'s set needs, if any, given
                /// the pair's score now and under each standing record.
                func consider(_ target: MemberID, now newTenths: UInt8?, before olds: [UInt8?]) {
                    guard target != id, let entry = entryOf(target) else { return }
                    counts.considered += 1
                    if let threshold, entry.coveredAt > threshold {
                        counts.skippedCovered += 1
                        return
                    }
                    if olds.allSatisfy({ $0 == newTenths }) {
                        counts.skippedUnchanged += 1
                        return
                    }
                    let admittedNow = newTenths.map { entry.admits(tenths: Int($0), id: id) } ?? false
                    let admittedBefore = olds.contains { $0.map { entry.admits(tenths: Int($0), id: id) } ?? false }
                    if !admittedNow && !admittedBefore {
                        counts.skippedBelowFloor += 1
                        return
                    }
                    // A target gone from the snapshot is deleted: its set goes with it.
                    guard let tag = population.tag(of: target) else { return }
                    placements.append(
                        ScoreStore.Placement(target: target, member: id, tenths: newTenths.map(Int.init), answersVersion: String(tag)))
                }
                if standing.isEmpty {
                    // One pass over the candidates, no hash lookups but the set index's.
                    let never: [UInt8?] = [nil]
                    for match in currentAll { consider(match.id, now: match.tenths, before: never) }
                } else {
                    for target in targets { consider(target, now: newScores[target], before: oldScores.map { $0[target] }) }
                }
                return placements
            }
        })
        counts.placed += placements.count
        stats = counts
        return placements
    }

    /// Runs a publication's placements between its intent and its
    /// settlement (see ``MemberStore/PublishedStore``), under `lock` (the
    /// job's, taken with its read).
    func publish(
        _ id: MemberID, current: Member?, state: PublicationState, placements: [ScoreStore.Placement],
        lock: PublicationLock?, into outcome: inout GenerationOutcome
    ) throws {
        guard let lock else { preconditionFailure("a publication runs under the member's publication lock") }
        if let current, !state.records.contains(where: { $0.version == state.currentVersion }) {
            try mysql { try $0.publications.recordIntent(current) }
        }
        // Asks the server: a connection that died since the read reconnects here, and the lock is gone.
        guard try mysql({ try $0.publications.holdsLock(id) }) else { throw Self.lockLost(id) }
        guard let sets = core.sets else { preconditionFailure("only a publishing process publishes (it keeps the set index)") }
        let results = core.scores.place(placements, limit: core.settings.scoring.topN) { sets.entry(of: $0)?.shard }
        try absorb(results, placements: placements, into: &outcome)
        // Settles only in the server session that holds the lock: checked in
        // the visit itself, so a reconnect within it (the settle's retry)
        // refuses instead of settling without the lock.
        try mysql { session in
            guard session.holds(lock) else { throw Self.lockLost(id) }
            try session.publications.settle(id, current: current)
        }
    }

    /// The publication lock was lost (MySQL reconnected): another job may be
    /// publishing, and this one must not settle.
    static func lockLost(_ id: MemberID) -> GenerationFailure {
        GenerationFailure(.failed, "the publication lock of member \(id) was lost (MySQL reconnected): retrying")
    }
}
