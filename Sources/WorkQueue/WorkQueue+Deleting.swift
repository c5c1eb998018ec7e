import RedisClient
import Scoring

/// Deleted members and blocked pairs every reader must hide: the web
/// backend records a deletion or a new block here before it answers, so no
/// read shows the member (or either member of the pair to the other) from
/// then on, in any process, even before every process's snapshot holds the
/// change and while the worker is still correcting the sets. Marks expire
/// after ``deletionMarkTTL`` (by then every snapshot has long held the
/// change, and readers hide what fails the hard filters against their
/// snapshot); they are trimmed whenever one is added.
extension WorkQueue {
    /// How long a deletion mark stays: far longer than a removal job takes
    /// (one retry cycle included), so that a set written from a snapshot
    /// that still held the member is hidden until it is regenerated.
    package static let deletionMarkTTLMilliseconds: Int64 = 86_400_000

    /// The members marked deleted, the blocked pairs, and the version of
    /// both lists (one counter: a reader refetches when either changed).
    package struct DeletionMarks: Sendable, Hashable {
        package var version: Int
        package var members: Set<MemberID>
        /// For each member in a marked block, everyone they are blocked with.
        package var blocked: [MemberID: Set<MemberID>]

        package init(version: Int = -1, members: Set<MemberID> = [], blocked: [MemberID: Set<MemberID>] = [:]) {
            self.version = version
            self.members = members
            self.blocked = blocked
        }

        /// Whether `a` and `b` are a marked block (either way).
        package func blocks(_ a: MemberID, _ b: MemberID) -> Bool { blocked[a]?.contains(b) ?? false }
    }

    /// Marks blocks between `member` and each of `others` as of `now` (ms),
    /// dropping expired marks.
    package func markBlocked(_ member: MemberID, _ others: [MemberID], now: Int64, on redis: QueueConnection) throws(QueueError) {
        let keys = self.keys(on: redis)
        guard !others.isEmpty else { return }
        var add = RedisCommand("ZADD")
        add.append(keys.blocking)
        for other in others {
            add.append(String(now))
            add.append(Self.pairKey(member, other))
        }
        try checked(pipeline(on: redis, [
            add,
            ["ZREMRANGEBYSCORE", keys.blocking, "-inf", "(\(now - Self.deletionMarkTTLMilliseconds)"],
            ["INCR", keys.deletingVersion],
        ]))
    }

    /// Removes the marks of blocks between `member` and `others` (an
    /// unblock, or a block that was not stored after all).
    package func unmarkBlocked(_ member: MemberID, _ others: [MemberID], on redis: QueueConnection) throws(QueueError) {
        let keys = self.keys(on: redis)
        guard !others.isEmpty else { return }
        var remove = RedisCommand("ZREM")
        remove.append(keys.blocking)
        for other in others { remove.append(Self.pairKey(member, other)) }
        try checked(pipeline(on: redis, [remove, ["INCR", keys.deletingVersion]]))
    }

    /// `low:high`: a pair in one order whoever blocked whom.
    static func pairKey(_ a: MemberID, _ b: MemberID) -> String { a < b ? "\(a):\(b)" : "\(b):\(a)" }

    /// Marks `member` deleted as of `now` (ms), dropping expired marks.
    package func markDeleted(_ member: MemberID, now: Int64, on redis: QueueConnection) throws(QueueError) {
        let keys = self.keys(on: redis)
        try checked(pipeline(on: redis, [
            ["ZADD", keys.deleting, String(now), String(member)],
            ["ZREMRANGEBYSCORE", keys.deleting, "-inf", "(\(now - Self.deletionMarkTTLMilliseconds)"],
            ["INCR", keys.deletingVersion],
        ]))
    }

    /// Pipelines `commands` (all about this queue's keys) on `redis`.
    private func pipeline(on redis: QueueConnection, _ commands: [RedisCommand]) throws(QueueError) -> [Result<RedisValue, RedisError>] {
        do { return try redis.pipeline(commands, key: keys(on: redis).deletingVersion) } catch { throw .redis(error) }
    }

    /// Throws the first failure or error reply of a pipeline.
    private func checked(_ replies: [Result<RedisValue, RedisError>]) throws(QueueError) {
        for reply in replies {
            switch reply {
            case .failure(let error): throw .redis(error)
            case .success(let value): if let message = value.errorMessage { throw QueueError.server(message) }
            }
        }
    }

    /// Removes `member`'s mark (a deletion that did not happen after all).
    package func unmarkDeleted(_ member: MemberID, on redis: QueueConnection) throws(QueueError) {
        let keys = self.keys(on: redis)
        try checked(pipeline(on: redis, [["ZREM", keys.deleting, String(member)], ["INCR", keys.deletingVersion]]))
    }

    /// The version of the deletion marks; compare with a cached
    /// ``DeletionMarks/version`` before reading them all again.
    package func deletionMarksVersion(on redis: QueueConnection) throws(QueueError) -> Int {
        let keys = self.keys(on: redis)
        let reply: RedisValue
        do { reply = try redis.send(["GET", keys.deletingVersion], key: keys.deletingVersion) } catch { throw .redis(error) }
        if let message = reply.errorMessage { throw QueueError.server(message) }
        return reply.string.flatMap(Int.init) ?? 0
    }

    /// Sends the version request without waiting for it, so a caller can
    /// overlap it with a round trip to another server; read the answer with
    /// ``readDeletionMarksVersion(on:)``.
    package func requestDeletionMarksVersion(on redis: QueueConnection) throws(QueueError) {
        let keys = self.keys(on: redis)
        do { try redis.request(["GET", keys.deletingVersion], key: keys.deletingVersion) } catch { throw .redis(error) }
    }

    /// The answer to ``requestDeletionMarksVersion(on:)``.
    package func readDeletionMarksVersion(on redis: QueueConnection) throws(QueueError) -> Int {
        let reply: RedisValue
        do { reply = try redis.readReply(key: keys(on: redis).deletingVersion) } catch { throw .redis(error) }
        if let message = reply.errorMessage { throw QueueError.server(message) }
        return reply.string.flatMap(Int.init) ?? 0
    }

    /// Every marked member and pair with the lists' version, in one `MULTI`.
    package func deletionMarks(on redis: QueueConnection) throws(QueueError) -> DeletionMarks {
        let keys = self.keys(on: redis)
        let replies = try pipeline(on: redis, [
            ["MULTI"], ["GET", keys.deletingVersion], ["ZRANGE", keys.deleting, "0", "-1"], ["ZRANGE", keys.blocking, "0", "-1"],
            ["EXEC"],
        ])
        guard case .success(let exec)? = replies.last, let results = exec.array, results.count == 3 else {
            if case .failure(let error)? = replies.first(where: { if case .failure = $0 { true } else { false } }) {
                throw .redis(error)
            }
            throw QueueError.unexpectedReply("deletion marks")
        }
        let version = results[0].string.flatMap(Int.init) ?? 0
        let members = Set((results[1].array ?? []).compactMap { $0.string.flatMap(MemberID.init) })
        var blocked: [MemberID: Set<MemberID>] = [:]
        for pair in results[2].array ?? [] {
            guard let text = pair.string, let colon = text.firstIndex(of: ":"),
                let a = MemberID(text[..<colon]), let b = MemberID(text[text.index(after: colon)...])
            else { continue }
            blocked[a, default: []].insert(b)
            blocked[b, default: []].insert(a)
        }
        return DeletionMarks(version: version, members: members, blocked: blocked)
    }
}
