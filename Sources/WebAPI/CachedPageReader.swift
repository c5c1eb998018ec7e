import CoreMetrics
import Foundation
import KindredCore
import KindredSupport
import Logging
import MemberFormat
import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Synchronization
import WorkQueue

/// A page of matches asked of the batched path.
struct PageRequest: Sendable {
    let member: MemberID
    let offset: Int
    let limit: Int
}

/// What the batched path made of a request.
enum CachedRead: Sendable {
    case page(MatchesPage)
    /// The member is deleted (a 404).
    case deleted
    /// Not servable from the cache now (not cached, stale, missing, no known
    /// shard, a dependency failing): the request takes the full path.
    case fullPath
}

/// Serves pages of cached ranked sets to a batch of requests with one round
/// trip per shard (the members' set metas with the changes since each cached
/// copy, pipelined) and one to the queue's Redis (the deletion marks'
/// version), both per batch: the full path's checks (the set is there,
/// current and the one cached, or brought to it by its changes; the member
/// and the matches are not deleted), for many requests at once.
struct CachedPageReader: Sendable {
    let core: GenerationCore
    let cache: RankedSetCache
    let deletions: DeletionFilter
    let answersVersions: AnswersVersionCache

    func read(_ requests: [PageRequest], _ thread: IOThread) -> [CachedRead] {
        // Asked after every request of the batch arrived: a deletion answered
        // before any of them is seen, as on the full path.
        let pending = deletions.begin(thread)
        var answersVersionOf = [String?](repeating: nil, count: requests.count)
        var byShard: [UInt32: [Int]] = [:]
        for (index, request) in requests.enumerated() {
            guard let answersVersion = answersVersions.snapshotAnswersVersion(of: request.member, core),
                let shard = core.directory.cachedShard(of: request.member)
            else { continue }
            answersVersionOf[index] = answersVersion
            byShard[shard, default: []].append(index)
        }
        var reads = [ScoreStore.MetaRead?](repeating: nil, count: requests.count)
        var copies = [ScoreStore.SetMeta?](repeating: nil, count: requests.count)
        var shardOf = [UInt32](repeating: 0, count: requests.count)
        for (shard, indexes) in byShard {
            for index in indexes { copies[index] = cache.copyMeta(requests[index].member, shard: shard) }
            // A failure is the full path's to report (and count).
            guard
                // Watched: placements log these sets' changes, which bring the copies up to date.
                let found = try? core.scores.readMetasAndChanges(
                    indexes.map { (requests[$0].member, copies[$0]) }, shard: shard, watch: true)
            else { continue }
            for (index, read) in zip(indexes, found) {
                reads[index] = read
                shardOf[index] = shard
            }
        }
        let marks = deletions.finish(pending, thread)
        return requests.indices.map { index -> CachedRead in
            let request = requests[index]
            if marks.isDeleted(request.member) { return .deleted }
            guard let meta = reads[index]?.meta, meta.answersVersion == answersVersionOf[index] else { return .fullPath }
            let ranked: [UInt64]
            if let cached = cache.lookup(request.member, shard: shardOf[index], meta: meta, countingMiss: false) {
                ranked = cached.ranked
            } else if let copy = copies[index], let changes = reads[index]?.changes,
                let applied = cache.apply(request.member, shard: shardOf[index], from: copy, to: meta, changes: changes)
            {
                ranked = applied
            } else {
                return .fullPath
            }
            let visible = WebBackend.visible(
                request.member, shard: shardOf[index], meta: meta, ranked: ranked, marks: marks, cache: cache, core: core)
            return .page(
                WebBackend.page(request.member, visible: visible, offset: request.offset, limit: request.limit, generatedAt: meta.generatedAt))
        }
    }
}
