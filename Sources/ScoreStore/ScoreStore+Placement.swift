import Foundation
import KindredSupport
import RedisClient
import Scoring

extension ScoreStore {
    /// Puts one member into one set as their pair stands now
    /// (``Scripts/place``).
    package struct Placement: Sendable, Hashable {
        /// Whose set.
        package var target: MemberID
        /// Who is placed.
        package var member: MemberID
        /// The pair's score; nil when `member` is not `target`'s candidate
        /// (or scores below MIN_SCORE): then the entry must not stand.
        package var tenths: Int?
        /// The answers version of `target`'s set the pair was computed for (the
        /// target's answers version): a set written for another one refuses.
        package var answersVersion: String

        package init(target: MemberID, member: MemberID, tenths: Int?, answersVersion: String) {
            self.target = target
            self.member = member
            self.tenths = tenths
            self.answersVersion = answersVersion
        }
    }

    /// What a placement found and did.
    package enum PlacementOutcome: Int, Sendable, Hashable, CaseIterable {
        /// The target has no set.
        case noSet = 0
        case entered = 1
        /// The entry stood with another score (or, in a set no reader
        /// watches, possibly the same: see ``Scripts/place``).
        case updated = 2
        /// Not there, and does not belong there.
        case absent = 3
        /// Was there, and no longer belongs.
        case removed = 4
        /// The entry stood with this score already (told only in a watched
        /// set, whose change log needs the old score anyway).
        case unchanged = 5
        /// The target's set was computed for another answers version (it is being
        /// rebuilt, or the caller's view of the target is old).
        case stale = 6
        /// The target's set keeps no floor (written before floors): rebuild it.
        case legacy = 7

        package var name: String {
            switch self {
            case .noSet: "no_set"
            case .entered: "entered"
            case .updated: "updated"
            case .absent: "absent"
            case .removed: "removed"
            case .unchanged: "unchanged"
            case .stale: "stale"
            case .legacy: "legacy"
            }
        }
    }

    /// One placement's reply: the outcome and the target set's state after it.
    package struct PlacementReply: Sendable, Hashable {
        package var outcome: PlacementOutcome
        package var count: Int
        /// nil when the set holds every candidate.
        package var floor: Match?
        package var trimmed: Int
        /// The set's `generated_at` (Unix seconds), to tell which write a
        /// learned floor belongs to.
        package var generatedAt: Int64

        /// The set holds fewer than `limit` entries and not every candidate:
        /// it must be rebuilt before its first N are known again.
        package func needsRefill(limit: Int) -> Bool {
            switch outcome {
            case .noSet, .stale, .legacy: false
            default: floor != nil && count < limit
            }
        }
    }

    /// The replies of ``place(_:limit:shardOf:)``.
    package struct PlacementResults: Sendable {
        /// One per placement, in order; nil when the target has no shard or
        /// its shard failed.
        package var replies: [PlacementReply?]
        /// One error per shard that failed.
        package var errors: [ScoreStoreError] = []
        /// Placements whose shard failed (their outcome is unknown).
        package var failed = 0
        /// Placements whose target has no shard.
        package var noShard = 0

        /// How many placements had each outcome.
        package func count(_ outcome: PlacementOutcome) -> Int {
            replies.reduce(0) { $0 + ($1?.outcome == outcome ? 1 : 0) }
        }
    }

    /// Runs placements, atomically each (``Scripts/place``): a placement
    /// makes the target's set hold the member with the given score when it
    /// ranks at or above the set's floor, and not hold them otherwise, so a
    /// set stays the exact prefix of its member's ranking. A set that grows
    /// past N + S + W is trimmed back to N + S in the same script
    /// (``Configuration/trimWindow(forLimit:)``).
    ///
    /// Grouped by shard (`shardOf`; nil: no shard) and pipelined in batches
    /// of ``Configuration/batchSize``. A shard that fails does not stop the
    /// others: its placements' replies are nil, counted in
    /// ``PlacementResults/failed``, with its error in ``PlacementResults/errors``.
    /// Every placement is safe to repeat.
    package func place(_ placements: [Placement], limit: Int, shardOf: (MemberID) -> ShardID?) -> PlacementResults {
        var results = PlacementResults(replies: [PlacementReply?](repeating: nil, count: placements.count))
        guard limit >= 1 else {
            results.failed = placements.count
            results.errors.append(ScoreStoreError(code: .invalidArgument, message: "limit (N) must be at least 1"))
            return results
        }
        var byShard: [ShardID: [Int]] = [:]
        var invalid = 0
        for (index, placement) in placements.enumerated() {
            guard placement.target != placement.member, (placement.tenths ?? 0) <= 100, (placement.tenths ?? 0) >= 0 else {
                invalid += 1
                continue
            }
            guard let shard = shardOf(placement.target) else {
                results.noShard += 1
                continue
            }
            byShard[shard, default: []].append(index)
        }
        if invalid > 0 {
            results.failed += invalid
            results.errors.append(
                ScoreStoreError(code: .invalidArgument, message: "\(invalid) placements were into the member's own set or out of range"))
        }
        let shards = byShard.keys.sorted()
        let failures = withConnections(shards[...], held: [:]) { connections in
            var failures: [ShardID: ScoreStoreError] = [:]
            var round = byShard
            var backoff = Backoff(BackoffPolicy(initialDelay: .milliseconds(20), maxAttempts: Self.placementRounds))
            // A cluster shard's placements that a node redirected (a slot
            // moved or migrating) go again on a map read again, a few times.
            for _ in 0..<Self.placementRounds {
                let (failed, redirected) = fanOut(placements, byShard: round, connections: connections, limit: limit, into: &results)
                failures.merge(failed) { first, _ in first }
                guard !redirected.isEmpty else { break }
                var next: [ShardID: [Int]] = [:]
                for (shard, indexes) in redirected where failures[shard] == nil {
                    connections[shard]?.rerouted()
                    next[shard] = indexes
                }
                guard let delay = backoff.next() else {
                    for shard in next.keys {
                        failures[shard] = ScoreStoreError(
                            code: .shardUnavailable, message: "placements still redirected after \(Self.placementRounds) rounds (the cluster is resharding)",
                            shard: shard)
                    }
                    break
                }
                sleepThread(delay)
                round = next
            }
            return failures
        }
        for (shard, error) in failures.sorted(by: { $0.key < $1.key }) {
            for index in byShard[shard] ?? [] where results.replies[index] == nil { results.failed += 1 }
            results.errors.append(error)
        }
        return results
    }

    /// Runs `body` with a connection to each of `shards` held at once (a
    /// shard whose connection cannot be had is left out, with its error in
    /// the result), and returns the shards that failed, in it or before it.
    /// A shard that failed in `body` counts for its breaker and its
    /// connection is closed; the next use of the shard connects again.
    private func withConnections(
        _ shards: ArraySlice<ShardID>, held: [ShardID: ShardConnection],
        _ body: ([ShardID: ShardConnection]) -> [ShardID: ScoreStoreError]
    ) -> [ShardID: ScoreStoreError] {
        guard let shard = shards.first else { return body(held) }
        do {
            return try manager.withConnection(to: shard) { (connection) -> ([ShardID: ScoreStoreError], ScoreStoreError?) in
                var more = held
                more[shard] = connection
                let failures = withConnections(shards.dropFirst(), held: more, body)
                return (failures, failures[shard])
            }
        } catch {
            // No connection to this shard: the others go on without it.
            var rest = withConnections(shards.dropFirst(), held: held, body)
            rest[shard] = error
            return rest
        }
    }

    /// How many times placements a cluster node redirected are sent again.
    static let placementRounds = 4

    /// Every shard's placements at once: each round writes the next batch
    /// (up to ``Configuration/batchSize``) to every server (each shard's,
    /// or each master of a cluster shard that holds some of the targets)
    /// before reading any reply, so a job spread over S shards waits for
    /// the slowest shard, not for the sum of them. A shard that fails
    /// leaves its remaining placements without a reply; the others go on.
    /// Placements a cluster node redirected are returned by shard, without
    /// a reply, for the caller to send again.
    private func fanOut(
        _ placements: [Placement], byShard: [ShardID: [Int]], connections: [ShardID: ShardConnection], limit: Int,
        into results: inout PlacementResults
    ) -> (failures: [ShardID: ScoreStoreError], redirected: [ShardID: [Int]]) {
        let slack = configuration.slack(forLimit: limit)
        let window = configuration.trimWindow(forLimit: limit)
        let buckets = layout.buckets
        let logLength = configuration.changeLogLength
        // The placements' clock for the watch marks (Configuration.watchSeconds).
        let now = Int(Date().timeIntervalSince1970)
        var failures: [ShardID: ScoreStoreError] = [:]
        var redirected: [ShardID: [Int]] = [:]
        /// The member, the score (`7.3` and 73, or empty and -1 when not a
        /// candidate) and the answers version: both scripts' per-placement arguments.
        func appendPair(_ placement: Placement, to command: inout RedisCommand) {
            command.append(Int(placement.member))
            if let tenths = placement.tenths {
                command.append(fixedPoint: tenths, fractionDigits: 1)
                command.append(tenths)
            } else {
                command.append("")
                command.append(-1)
            }
            command.append(placement.answersVersion)
        }
        func append(_ placement: Placement, sha: String, on redis: RedisConnection) {
            redis.append("EVALSHA") { command in
                command.append(sha)
                command.append(3)
                command.append(layout.metaKey(placement.target))
                command.append(layout.liveKey(placement.target, bucket: layout.bucket(of: placement.member)))
                command.append(layout.logKey(placement.target))
                appendPair(placement, to: &command)
                command.append(limit)
                command.append(slack)
                command.append(buckets)
                command.append(layout.prefix(placement.target))
                command.append(logLength)
                command.append(now)
                command.append(window)
            }
        }
        /// Many placements in one call (``Scripts/placeMany``), on a standalone server.
        func append(many indexes: ArraySlice<Int>, sha: String, on redis: RedisConnection) {
            redis.append("EVALSHA") { command in
                command.append(sha)
                command.append(3 * indexes.count)
                for index in indexes {
                    let placement = placements[index]
                    command.append(layout.metaKey(placement.target))
                    command.append(layout.liveKey(placement.target, bucket: layout.bucket(of: placement.member)))
                    command.append(layout.logKey(placement.target))
                }
                command.append(limit)
                command.append(slack)
                command.append(buckets)
                command.append(logLength)
                command.append(now)
                command.append(window)
                for index in indexes {
                    let placement = placements[index]
                    appendPair(placement, to: &command)
                    command.append(layout.prefix(placement.target))
                }
            }
        }
        func fail(_ shard: ShardID, _ error: RedisError) {
            if failures[shard] == nil { failures[shard] = ScoreStoreError(error, shard: shard) }
        }
        /// One server's share of one shard's placements.
        struct Lane {
            let shard: ShardID
            let connection: ShardConnection
            let redis: RedisConnection
            let indexes: [Int]
            var next = 0
            var sha: String?
            /// Placements go in calls of ``placementsPerCall`` (a standalone
            /// server), else one call each (a cluster: the targets' keys lie
            /// in many slots).
            let many: Bool
            var script: LuaScript { many ? Scripts.placeMany : Scripts.place }
        }
        var lanes: [Lane] = []
        for (shard, connection) in connections.sorted(by: { $0.key < $1.key }) {
            guard let indexes = byShard[shard] else { continue }
            do throws(RedisError) {
                for group in try connection.route(indexes.map { placements[$0].target }) {
                    lanes.append(
                        Lane(
                            shard: shard, connection: connection, redis: group.redis, indexes: group.indexes.map { indexes[$0] },
                            many: !connection.isCluster))
                }
            } catch {
                fail(shard, error)
            }
        }
        while true {
            // Send: the next batch of every lane whose shard is still going.
            var sent: [(lane: Int, batch: ArraySlice<Int>)] = []
            for lane in lanes.indices where failures[lanes[lane].shard] == nil {
                let shard = lanes[lane].shard
                let start = lanes[lane].next
                let indexes = lanes[lane].indexes
                guard start < indexes.count else { continue }
                let batch = indexes[start..<min(indexes.count, start + configuration.batchSize)]
                lanes[lane].next = start + batch.count
                do throws(RedisError) {
                    let sha: String
                    if let known = lanes[lane].sha {
                        sha = known
                    } else {
                        sha = try lanes[lane].connection.sha(of: lanes[lane].script, on: lanes[lane].redis)
                        lanes[lane].sha = sha
                    }
                    if lanes[lane].many {
                        for start in stride(from: batch.startIndex, to: batch.endIndex, by: Self.placementsPerCall) {
                            append(many: batch[start..<min(batch.endIndex, start + Self.placementsPerCall)], sha: sha, on: lanes[lane].redis)
                        }
                    } else {
                        for index in batch { append(placements[index], sha: sha, on: lanes[lane].redis) }
                    }
                    try lanes[lane].redis.flush()
                    hooks.flushed(shard)
                    sent.append((lane, batch))
                } catch {
                    fail(shard, error)
                }
            }
            if sent.isEmpty { break }
            // Receive, server by server (the others' replies wait in their sockets).
            for (lane, batch) in sent {
                let shard = lanes[lane].shard
                let redis = lanes[lane].redis
                do throws(RedisError) {
                    var missingScript: [Int] = []
                    var failure: RedisValue?
                    func take(_ reply: RedisValue, _ index: Int) {
                        if let parsed = Self.placementReply(reply) {
                            results.replies[index] = parsed
                        } else if ClusterConnection.isRoutingReply(reply) {
                            redirected[shard, default: []].append(index)
                        } else if failure == nil {
                            failure = reply
                        }
                    }
                    /// A ``Scripts/placeMany`` reply: six integers per placement.
                    func takeMany(_ reply: RedisValue, _ chunk: ArraySlice<Int>) {
                        guard let values = reply.array, values.count == 6 * chunk.count else {
                            if failure == nil { failure = reply }
                            return
                        }
                        for (offset, index) in chunk.enumerated() {
                            if let parsed = Self.placementReply(values[(6 * offset)..<(6 * offset + 6)]) {
                                results.replies[index] = parsed
                            } else if failure == nil {
                                failure = reply
                            }
                        }
                    }
                    if lanes[lane].many {
                        var missingChunks: [ArraySlice<Int>] = []
                        for start in stride(from: batch.startIndex, to: batch.endIndex, by: Self.placementsPerCall) {
                            let chunk = batch[start..<min(batch.endIndex, start + Self.placementsPerCall)]
                            let reply = try redis.readReply()
                            if reply.errorKind == "NOSCRIPT" { missingChunks.append(chunk) } else { takeMany(reply, chunk) }
                        }
                        if !missingChunks.isEmpty {
                            // The script cache was flushed: load again and resend
                            // those (the server ran none of them).
                            let sha = try lanes[lane].connection.sha(of: Scripts.placeMany, on: redis, reload: true)
                            lanes[lane].sha = sha
                            for chunk in missingChunks { append(many: chunk, sha: sha, on: redis) }
                            for chunk in missingChunks { takeMany(try redis.readReply(), chunk) }
                        }
                    } else {
                        for index in batch {
                            let reply = try redis.readReply()
                            if reply.errorKind == "NOSCRIPT" { missingScript.append(index) } else { take(reply, index) }
                        }
                        if !missingScript.isEmpty {
                            // The script cache was flushed: load again and resend
                            // those (the server ran none of them).
                            let sha = try lanes[lane].connection.sha(of: Scripts.place, on: redis, reload: true)
                            lanes[lane].sha = sha
                            for index in missingScript { append(placements[index], sha: sha, on: redis) }
                            for index in missingScript { take(try redis.readReply(), index) }
                        }
                    }
                    if let failure {
                        _ = try failure.checked(context: redis.endpoint)
                        throw RedisError(code: .serverError, message: "the place script answered an unexpected reply", context: redis.endpoint, command: "EVALSHA")
                    }
                } catch {
                    fail(shard, error)
                }
            }
        }
        return (failures, redirected)
    }

    /// How many placements one ``Scripts/placeMany`` call carries: the
    /// call's framing paid once per this many, and the server busy with one
    /// call for well under a millisecond (a trim inside adds ~3.5 ms).
    static let placementsPerCall = 64

    static func placementReply(_ reply: RedisValue) -> PlacementReply? {
        guard let fields = reply.array else { return nil }
        return placementReply(fields[...])
    }

    /// Six integers: a ``Scripts/place`` answer, or one placement's share of
    /// a ``Scripts/placeMany`` answer.
    static func placementReply(_ fields: ArraySlice<RedisValue>) -> PlacementReply? {
        guard fields.count == 6 else { return nil }
        let at = fields.startIndex
        guard let code = fields[at].int, let outcome = PlacementOutcome(rawValue: code), let count = fields[at + 1].int,
            let floorTenths = fields[at + 2].int, let floorID = fields[at + 3].int, let trimmed = fields[at + 4].int,
            let generatedAt = fields[at + 5].int
        else { return nil }
        let floor: Match?
        if (0...100).contains(floorTenths), let id = MemberID(exactly: floorID) {
            floor = Match(id: id, tenths: floorTenths)
        } else {
            floor = nil
        }
        return PlacementReply(outcome: outcome, count: count, floor: floor, trimmed: trimmed, generatedAt: Int64(generatedAt))
    }
}
