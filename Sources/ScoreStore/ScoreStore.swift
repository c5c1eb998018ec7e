import KindredSupport
import RedisClient
import Scoring
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Members' top-N match sets on the Redis-compatible shards: whole-set
/// writes with atomic replacement, placements that keep other members' sets
/// exact as a member changes, removal, reads, and the per-shard marker,
/// write sequence and statistics.
///
/// The layout is ``ScoreLayout`` (SCORING.md, "How a set of matches is
/// stored"). Callers say which shard holds a member (the directory lives in
/// the member store): single-member calls take a ``ShardID``, calls that
/// touch many members take a resolver.
///
/// Threading: thread-safe and synchronous. Every call blocks the calling
/// thread on the network; call it from plain threads (the worker pool, a
/// dedicated executor), never from Swift's cooperative pool. Concurrent
/// callers get separate pooled connections.
///
/// Atomicity: a reader never sees half an old and half a new set (the
/// replacement and the read are each one atomic script or transaction on the
/// shard); every placement is one atomic script. Every operation is
/// safe to repeat after a ``ScoreStoreError/Code/connectionBroken`` error.
package final class ScoreStore: Sendable {
    package struct Configuration: Sendable {
        /// The bucket layout (B). Every process must use the same.
        package var layout: ScoreLayout = .default
        /// Field/value pairs (writes) or commands (offers, removals) per
        /// pipelined batch: written in one go, then the replies read.
        package var batchSize = 1000
        /// The TTL of a write's temporary buckets: a writer that dies
        /// leaves nothing behind after this. Must exceed the slowest write.
        package var temporaryKeyTTL: Duration = .seconds(60)
        /// The key of the per-shard marker.
        package var markerKey = "kindred:marker"
        /// The slack is `max(minimumSlack, N / slackDivisor)`. 10 by measure:
        /// under a stream of registrations into a 100k population, trims at
        /// N/50 made the placement script cost 33 µs a call on average (a
        /// 3 ms trim every 100 entering placements); N/10 costs ~10% more
        /// memory and a fifth of the trims.
        package var slackDivisor = 10
        package var minimumSlack = 16
        /// L: the entries a set's change log keeps (``SetChange``). A reader
        /// whose cached copy is more than L changes behind reads the set
        /// whole. 128: under a live site's churn (`scripts/bench churn`) a
        /// full set takes about one placement a second, so 128 covers two
        /// minutes between one member's reads (a member paging reads every
        /// few seconds); measured there, a log of 128-160 entries takes
        /// ~6.3 KB (`MEMORY USAGE`, ~45 bytes an entry: the counter and the
        /// identity are 13 digits each), ~9% of a 5,500-entry set. Each
        /// placement that changes a set pays one RPUSH, and one in L/4 an
        /// LTRIM back to L (the log holds L to L + L/4 entries): ~2-3 µs of
        /// server time on a placement of 9-20 µs.
        package var changeLogLength = 128
        /// How long a reader's interest in a set lasts: placements append to
        /// a set's change log only while its meta's `watched` (Unix seconds,
        /// set by ``ScoreStore/readMetasAndChanges(_:shard:watch:)`` with
        /// `watch`) is at least their own clock's now. Most sets have no
        /// reader most of the time: their placements skip the log (~2 µs of
        /// server time each) and they hold no log (~6 KB). A reader whose
        /// copy missed changes finds a gap in the log's numbering and reads
        /// the set whole, so a lapsed mark costs a read, never a wrong page.
        /// Readers renew the mark once half of it has passed; 600 s leaves
        /// room for clocks a few minutes apart.
        package var watchSeconds = 600
        /// On a cluster shard: how an operation that a node redirected, or
        /// whose node failed, is tried again (``ClusterRouting``); its retry
        /// budget bounds the wait for a replica to take over from a dead
        /// master (the cluster's node timeout plus an election).
        package var clusterRouting = ClusterRouting.Policy()

        package init() {}

        /// How many entries past N a set keeps, S: a whole-set write stores
        /// the first N + S of the ranking, so that members who leave it
        /// (deleted, blocked, no longer candidates) are replaced from the
        /// slack without a rebuild until it holds fewer than N; a set that
        /// grows past N + S + W (``trimWindow(forLimit:)``) is trimmed back
        /// to N + S. `max(16, N / 10)` by default (500 for N = 5000).
        package func slack(forLimit limit: Int) -> Int { max(minimumSlack, limit / max(1, slackDivisor)) }

        /// W = S x `trimWindowSlacks`: how far a set grows past N + S before
        /// a trim cuts it back. A trim reads the whole set inside the
        /// placement script (~0.3 µs of server time per entry, ~2 ms at
        /// N = 5000 on a quiet shard, up to ~5 ms on a loaded one), once per
        /// W entering placements, so W sets what the
        /// trims add to each placement into a full set; it costs memory: a
        /// set holds N + S + W/2 entries on average. 2 by measure: under a
        /// stream of registrations into full sets (`scripts/bench-churn-ab`),
        /// a trim cost ~9 ms on a loaded shard, ~18 µs per entering
        /// placement at W = S, about what the placement itself costs;
        /// W = 2S halves that for ~4% more memory (BENCHMARKS.md, "Trims,
        /// one call fewer per placement, and the worker's share").
        package var trimWindowSlacks = 2
        package func trimWindow(forLimit limit: Int) -> Int { slack(forLimit: limit) * max(1, trimWindowSlacks) }

        /// The most entries a set holds: N + S + W (a placement past it trims).
        package func largestSet(forLimit limit: Int) -> Int { limit + slack(forLimit: limit) + trimWindow(forLimit: limit) }

        /// Whether whole-set writes spread their size over the trim window
        /// (``writtenSize(forLimit:member:)``). On by default; off, every
        /// write stores N + S.
        package var spreadsWrites = true

        /// How many entries of the ranking a whole-set write of `member`
        /// stores (fewer when there are fewer candidates): N + S + a share of
        /// W that the member's id picks, spread evenly over 0...W across
        /// members (a multiplicative hash, so the same member always gets the
        /// same share). Sets that are written together (a backfill, a site's
        /// first run) would otherwise all hold N + S and reach the trim point
        /// N + S + W together, a wave of trims that no worker keeps up with
        /// (BENCHMARKS.md, "Sets written at spread sizes"); spread, they start where a site's
        /// churn leaves them anyway (a set that takes placements holds
        /// N + S + W/2 on average), and their trims come one at a time. The
        /// cost: a set written by a backfill holds W/2 more entries on
        /// average (500 at N = 5000, ~9%) until its first trim.
        package func writtenSize(forLimit limit: Int, member: MemberID) -> Int {
            let base = limit + slack(forLimit: limit)
            guard spreadsWrites else { return base }
            let window = UInt64(trimWindow(forLimit: limit))
            let mixed = (UInt64(member) &* 0x9E37_79B9_7F4A_7C15) >> 32  // Fibonacci hashing: the high bits
            return base + Int(mixed % (window + 1))
        }
    }

    /// A set's bookkeeping (the meta hash).
    package struct SetMeta: Sendable, Hashable {
        /// The answers version (decimal) of the last whole-set write: the member's `AnswersVersion` when it was computed.
        package var answersVersion: String
        /// Unix seconds of the last whole-set write, as the writer gave them.
        package var generatedAt: Int64
        /// Entries in the set (offers and removals keep it exact).
        package var count: Int
        /// The N the set was written for.
        package var limit: Int
        /// The set holds exactly the candidates ranked at or above its
        /// floor; nil when it holds every candidate (``isComplete``) or
        /// keeps no floor (``isLegacy``).
        package var floor: Match?
        /// The set holds every candidate the member has.
        package var isComplete: Bool
        /// Written before floors were kept: it cannot be corrected in place
        /// and is rebuilt.
        package var isLegacy: Bool
        /// Bumped by every change: writes, placements, removals.
        package var changes: Int
        /// ``changes`` as the last whole write left it: two metas with the
        /// same value come from the same whole write (0: written before the
        /// field existed).
        package var written: Int

        package init(
            answersVersion: String, generatedAt: Int64, count: Int, limit: Int, floor: Match?, isComplete: Bool,
            isLegacy: Bool = false, changes: Int, written: Int = 0
        ) {
            self.answersVersion = answersVersion
            self.generatedAt = generatedAt
            self.count = count
            self.limit = limit
            self.floor = floor
            self.isComplete = isComplete
            self.isLegacy = isLegacy
            self.changes = changes
            self.written = written
        }

        /// Fewer than N entries and not every candidate: the first N are
        /// not known any more, so the set must be rebuilt.
        package var needsRefill: Bool { !isComplete && count < limit }
    }

    /// A whole set as read: ranked (score descending, id ascending).
    package struct StoredSet: Sendable, Hashable {
        package var matches: [Match]
        package var meta: SetMeta
        /// Fields skipped because they are not what the store writes (a field
        /// that is not an id, a value that is not a score, an id in the wrong
        /// bucket, a bucket of the wrong type). Zero in a healthy store.
        package var corruptEntries: Int
    }

    /// One page of a set.
    package struct SetPage: Sendable, Hashable {
        package var matches: [Match]
        /// Entries in the whole set (valid ones).
        package var total: Int
        package var meta: SetMeta
        package var corruptEntries: Int
    }

    /// What ``ScoreStore/writeSet(_:shard:matches:answersVersion:limit:complete:generatedAt:)`` stored.
    package struct WriteResult: Sendable, Hashable {
        package var count: Int
        /// nil when the set holds every candidate.
        package var floor: Match?
        /// The meta's change counter after the write.
        package var changes: Int
    }

    package let configuration: Configuration
    package let manager: ShardConnectionManager
    let hooks = Hooks()
    /// Shards this store has written its marker to (or seen it on) since it
    /// was created: ``writeSet(_:shard:matches:answersVersion:limit:complete:generatedAt:)``
    /// writes the marker before the first set it writes to a shard, once.
    let markedShards = MarkedShards()

    /// - Parameters:
    ///   - manager: the connections to the shards.
    package init(manager: ShardConnectionManager, configuration: Configuration = Configuration()) {
        precondition(configuration.batchSize >= 1, "batchSize must be at least 1")
        precondition(configuration.changeLogLength >= 1, "changeLogLength must be at least 1")
        self.manager = manager
        self.configuration = configuration
    }

    var layout: ScoreLayout { configuration.layout }

    /// Runs `body` on a connection to `shard`, turning Redis errors into
    /// ``ScoreStoreError``s.
    ///
    /// On a cluster shard, `body` runs again (every operation is safe to
    /// repeat) when a node redirects it (`MOVED`: at once, on a map read
    /// again; `ASK`, `TRYAGAIN`: the slot is migrating, after a delay) or
    /// fails (a master died and its replica is taking over: on a fresh map,
    /// after a delay), as ``ClusterRouting`` decides, within its retry
    /// budget; then the last error is thrown.
    func onShard<T>(_ shard: ShardID, _ body: (ShardConnection) throws(RedisError) -> T) throws(ScoreStoreError) -> T {
        try manager.withConnection(to: shard) { (connection) throws(ScoreStoreError) -> T in
            var routing = ClusterRouting(policy: configuration.clusterRouting)
            let clock = ContinuousClock()
            let start = clock.now
            while true {
                do throws(RedisError) {
                    return try body(connection)
                } catch {
                    guard connection.isCluster, Self.reroutes(error) else { throw ScoreStoreError(error, shard: shard) }
                    connection.rerouted()
                    let next = error.code == .serverError
                        ? routing.afterClusterError(kind: error.serverErrorKind, message: error.message, now: clock.now - start)
                        : routing.afterFailure(error, now: clock.now - start)
                    switch next {
                    case .done, .fail: throw ScoreStoreError(error, shard: shard)
                    case .retry(_, _, _, let delay): if delay > .zero { sleepThread(delay) }
                    }
                }
            }
        }
    }

    /// Whether a cluster shard's operation that failed with `error` may
    /// succeed on a fresh slot map: a redirection, a cluster-state error, or
    /// a node that could not be reached.
    static func reroutes(_ error: RedisError) -> Bool {
        if error.code == .serverError { return ClusterConnection.isRoutingError(kind: error.serverErrorKind) }
        return error.code == .connectionFailed || error.code == .connectionBroken || error.code == .timedOut
    }

    /// The current wall-clock time in Unix seconds.
    package static func unixTime() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec)
    }

    /// 16 random hex digits: a write's token.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// The shards a store has marked, remembered for the life of the process.
final class MarkedShards: Sendable {
    private let shards = Mutex(Set<ShardID>())

    func contains(_ shard: ShardID) -> Bool { shards.withLock { shards in shards.contains(shard) } }
    func insert(_ shard: ShardID) { _ = shards.withLock { shards in shards.insert(shard) } }
}

/// Test hooks: called at fixed points so tests can act mid-operation.
final class Hooks: Sendable {
    private let afterFlush = Mutex<(@Sendable (ShardID) -> Void)?>(nil)

    /// Called after a pipelined batch of placements was written,
    /// before its replies are read.
    func setAfterFlush(_ hook: (@Sendable (ShardID) -> Void)?) {
        afterFlush.withLock { afterFlush in afterFlush = hook }
    }

    func flushed(_ shard: ShardID) {
        afterFlush.withLock { afterFlush in afterFlush }?(shard)
    }
}
