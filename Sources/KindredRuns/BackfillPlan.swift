import Foundation
import KindredCore
import KindredSupport
import MemberStore
import ScoreStore
import Scoring

/// What a backfill will do, worked out before anything is written: which
/// selected members need a set (and why), where each set will go, and
/// whether the shards' memory budgets can take them.
package struct BackfillPlan: Sendable {
    /// Why a selected member needs work.
    package struct Reasons: Sendable, Hashable {
        /// No generation recorded.
        package var missing = 0
        /// Generated from other answers than the member's current ones.
        package var stale = 0
        /// Recorded on another shard than their assignment, or with no assignment.
        package var misplaced = 0
        /// Recorded as current, but the shard no longer holds the set.
        package var lost = 0

        package init() {}
        package var total: Int { missing + stale + misplaced + lost }
    }

    /// One shard's share of the work and its memory.
    package struct ShardShare: Sendable, Hashable {
        package var shard: ShardInfo
        /// Sets to (re)build for members already assigned to it.
        package var assigned = 0
        /// Members without a shard that the picker will give it (its weight
        /// against the active shards' current loads, as ``ShardPicker``).
        package var newlyAssigned = 0
        /// Estimated bytes the new sets add.
        package var addedBytes = 0
        /// Estimated bytes of the sets they replace on it.
        package var replacedBytes = 0
        /// `used_memory` now; nil when the shard did not answer.
        package var usedMemory: Int?

        package var sets: Int { assigned + newlyAssigned }
        /// Used memory after the run, by the estimate.
        package var projectedMemory: Int? { usedMemory.map { $0 + addedBytes - replacedBytes } }

        /// Nil when it fits (or has no budget); otherwise why not.
        package var budgetProblem: String? {
            guard let budget = shard.memoryBudget, sets > 0, addedBytes > replacedBytes else { return nil }
            guard let projected = projectedMemory, let used = usedMemory else {
                return "shard \(shard.id) (\(shard.address)) has a memory budget of \(Bytes.text(Int(budget))) "
                    + "but did not report its used memory, so the \(sets) set(s) cannot be checked against it"
            }
            guard projected > Int(budget) else { return nil }
            return "shard \(shard.id) (\(shard.address)): \(sets) set(s) need ~\(Bytes.text(addedBytes - replacedBytes)) more; "
                + "it uses \(Bytes.text(used)) of its \(Bytes.text(Int(budget))) budget and would reach ~\(Bytes.text(projected))"
        }
    }

    /// Every selected member above the checkpoint, ascending, and whether it needs work.
    package var members: [(id: MemberID, needsWork: Bool)]
    package var reasons: Reasons
    /// Selected members whose set is current (skipped).
    package var current: Int
    package var shares: [ShardShare]
    /// Mean matches per set, from scoring a sample of the members to rebuild.
    package var estimatedMatches: Double
    package var sampled: Int
    /// Estimated bytes per new set (``ScoreLayout/estimatedBytes(ofSetWith:largestID:)``).
    package var bytesPerSet: Int

    package var work: Int { reasons.total }

    /// Every shard's budget problem (empty: the sets fit).
    package var budgetProblems: [String] { shares.compactMap(\.budgetProblem) }
}

/// Works out a ``BackfillPlan`` (reads only: MySQL, the shards' `EXISTS`
/// and `INFO`, and the snapshot for a sample of scans).
package struct BackfillPlanner {
    package let core: GenerationCore
    /// Members scored to estimate the size of a set.
    package var sampleSize = 32

    package init(core: GenerationCore) {
        self.core = core
    }

    /// Plans the selected members above `checkpoint`.
    /// - Throws: a MySQL error; ``ScoreStoreError`` when a shard holding
    ///   sets to check does not answer (nothing can be decided then).
    package func plan(_ selection: MemberSelection, after checkpoint: MemberID, in session: StoreSession) throws -> BackfillPlan {
        let repository = session.members
        let shards = try session.shards.list()
        var members: [(id: MemberID, needsWork: Bool)] = []
        var reasons = BackfillPlan.Reasons()
        var current = 0
        var shares = Dictionary(uniqueKeysWithValues: shards.map { ($0.id, BackfillPlan.ShardShare(shard: $0)) })
        var loads = shards.filter { $0.state == .active }.map {
            ShardLoad(id: $0.id, weight: $0.weight, assigned: $0.assignedMembers)
        }
        var toRebuild: [MemberID] = []
        var replacedCounts: [UInt32: [Int]] = [:]
        var unassignedWithoutShard = 0
        var after = checkpoint
        while true {
            let page = try repository.selectedMembers(selection, after: after, limit: 10_000)
            guard let last = page.last else { break }
            after = last.id
            // Sets MySQL calls current must still be on their shard.
            var recorded: [UInt32: [MemberID]] = [:]
            for member in page where member.recordedCurrent {
                recorded[member.assignedShard!, default: []].append(member.id)
            }
            var present = Set<MemberID>()
            for (shard, ids) in recorded {
                present.formUnion(try core.scores.existingSets(ids, shard: shard))
            }
            for member in page {
                if member.recordedCurrent && present.contains(member.id) {
                    members.append((member.id, false))
                    current += 1
                    continue
                }
                members.append((member.id, true))
                toRebuild.append(member.id)
                if member.recordedCurrent {
                    reasons.lost += 1
                } else if let generation = member.generation, generation.current {
                    reasons.misplaced += 1
                } else if member.generation != nil {
                    reasons.stale += 1
                } else {
                    reasons.missing += 1
                }
                let target: UInt32
                if let assigned = member.assignedShard {
                    target = assigned
                    shares[assigned]?.assigned += 1
                } else if let picked = ShardPicker.pick(loads) {
                    target = picked
                    shares[picked]?.newlyAssigned += 1
                    if let index = loads.firstIndex(where: { $0.id == picked }) { loads[index].assigned += 1 }
                } else {
                    unassignedWithoutShard += 1
                    continue
                }
                if let generation = member.generation, generation.shard == target, !member.recordedCurrent {
                    replacedCounts[target, default: []].append(generation.matchCount)
                }
            }
        }
        if unassignedWithoutShard > 0 {
            throw MemberStoreError(
                .noActiveShard,
                "\(unassignedWithoutShard) selected member(s) have no shard and no shard is active: add one with `kindred shards add`")
        }
        let (mean, sampled) = estimateMatches(toRebuild)
        let largestID = max(try repository.largestID(), toRebuild.last ?? 0)
        let layout = core.scores.configuration.layout
        let bytesPerSet = layout.estimatedBytes(ofSetWith: Int(mean.rounded(.up)), largestID: largestID)
        for id in shares.keys {
            guard var share = shares[id] else { continue }
            share.addedBytes = share.sets * bytesPerSet
            share.replacedBytes = (replacedCounts[id] ?? []).reduce(0) {
                $0 + layout.estimatedBytes(ofSetWith: $1, largestID: largestID)
            }
            if share.sets > 0 || share.shard.memoryBudget != nil {
                share.usedMemory = try? core.scores.shardStats(shard: id).usedMemory
            }
            shares[id] = share
        }
        return BackfillPlan(
            members: members, reasons: reasons, current: current,
            shares: shares.values.sorted { $0.shard.id < $1.shard.id }, estimatedMatches: mean, sampled: sampled,
            bytesPerSet: bytesPerSet)
    }

    /// Mean stored entries of up to ``sampleSize`` members spread evenly
    /// over `ids`, scored against the snapshot: what a write stores of each
    /// one's ranking (``ScoreStore/Configuration/writtenSize(forLimit:member:)``,
    /// N + S + the member's share of W, fewer with fewer candidates), or
    /// N + S + W/2 when none can be scored.
    func estimateMatches(_ ids: [MemberID]) -> (mean: Double, sampled: Int) {
        let settings = core.settings.scoring
        let configuration = core.scores.configuration
        guard !ids.isEmpty else { return (0, 0) }
        var finderSettings = settings
        finderSettings.topN = configuration.largestSet(forLimit: settings.topN)
        let finder = MatchFinder(settings: finderSettings)
        let step = max(1, ids.count / sampleSize)
        var total = 0
        var sampled = 0
        for index in stride(from: 0, to: ids.count, by: step).prefix(sampleSize) {
            let id = ids[index]
            guard let matches = core.population.read({ finder.matches(forID: id, in: $0) }) else { continue }
            total += min(matches.count, configuration.writtenSize(forLimit: settings.topN, member: id))
            sampled += 1
        }
        let fallback = settings.topN + configuration.slack(forLimit: settings.topN)
            + (configuration.spreadsWrites ? configuration.trimWindow(forLimit: settings.topN) / 2 : 0)
        return sampled == 0 ? (Double(fallback), 0) : (Double(total) / Double(sampled), sampled)
    }
}
