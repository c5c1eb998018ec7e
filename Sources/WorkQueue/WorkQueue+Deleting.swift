import RedisClient
import Scoring

/// Deleted members every reader must hide: the web backend records a
/// deletion here before it answers, so no read of anyone's set returns the
/// member from then on, even while the worker is still taking them out of
/// the sets of other shards. Marks expire after ``deletionMarkTTL`` (by then
/// the removal job has long run); they are trimmed whenever one is added.
extension WorkQueue {
    /// How long a deletion mark stays: far longer than a removal job takes
    /// (one retry cycle included), so that a set written from a snapshot
    /// that still held the member is hidden until it is regenerated.
    public static let deletionMarkTTLMilliseconds: Int64 = 86_400_000

    /// The members marked deleted and the version of that list.
    public struct DeletionMarks: Sendable, Hashable {
        public var version: Int
        public var members: Set<MemberID>

        public init(version: Int = -1, members: Set<MemberID> = []) {
            self.version = version
            self.members = members
        }
    }

    /// Marks `member` deleted as of `now` (ms), dropping expired marks.
    public func markDeleted(_ member: MemberID, now: Int64, on redis: RedisConnection) throws(QueueError) {
        try checked(redis.pipeline([
            ["ZADD", keys.deleting, String(now), String(member)],
            ["ZREMRANGEBYSCORE", keys.deleting, "-inf", "(\(now - Self.deletionMarkTTLMilliseconds)"],
            ["INCR", keys.deletingVersion],
        ]))
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
    public func unmarkDeleted(_ member: MemberID, on redis: RedisConnection) throws(QueueError) {
        try checked(redis.pipeline([["ZREM", keys.deleting, String(member)], ["INCR", keys.deletingVersion]]))
    }

    /// The version of the deletion marks; compare with a cached
    /// ``DeletionMarks/version`` before reading them all again.
    public func deletionMarksVersion(on redis: RedisConnection) throws(QueueError) -> Int {
        let reply: RedisValue
        do { reply = try redis.send(["GET", keys.deletingVersion]) } catch { throw .redis(error) }
        if let message = reply.errorMessage { throw QueueError.server(message) }
        return reply.string.flatMap(Int.init) ?? 0
    }

    /// Sends the version request without waiting for it, so a caller can
    /// overlap it with a round trip to another server; read the answer with
    /// ``readDeletionMarksVersion(on:)``.
    public func requestDeletionMarksVersion(on redis: RedisConnection) throws(QueueError) {
        redis.append(["GET", keys.deletingVersion])
        do { try redis.flush() } catch {
            _ = try? redis.readReply()  // keeps the connection's reply count straight; it is broken anyway
            throw .redis(error)
        }
    }

    /// The answer to ``requestDeletionMarksVersion(on:)``.
    public func readDeletionMarksVersion(on redis: RedisConnection) throws(QueueError) -> Int {
        let reply: RedisValue
        do { reply = try redis.readReply() } catch { throw .redis(error) }
        if let message = reply.errorMessage { throw QueueError.server(message) }
        return reply.string.flatMap(Int.init) ?? 0
    }

    /// Every marked member with the list's version, in one `MULTI`.
    public func deletionMarks(on redis: RedisConnection) throws(QueueError) -> DeletionMarks {
        let replies = redis.pipeline([["MULTI"], ["GET", keys.deletingVersion], ["ZRANGE", keys.deleting, "0", "-1"], ["EXEC"]])
        guard case .success(let exec)? = replies.last, let results = exec.array, results.count == 2 else {
            if case .failure(let error)? = replies.first(where: { if case .failure = $0 { true } else { false } }) {
                throw .redis(error)
            }
            throw QueueError.unexpectedReply("deletion marks")
        }
        let version = results[0].string.flatMap(Int.init) ?? 0
        let members = Set((results[1].array ?? []).compactMap { $0.string.flatMap(MemberID.init) })
        return DeletionMarks(version: version, members: members)
    }
}
