import Foundation
import RedisClient
import Scoring

extension ScoreStore {
    /// One entry of a set's change log (`scores:{X}:log`, ``Scripts/place``):
    /// what one placement did to the set, so that a reader holding the set as
    /// of ``changes`` - 1 can bring its copy to ``changes`` without reading
    /// the set whole.
    ///
    /// Stored as text: `CHANGES WRITTEN set ID TENTHS OLD [trim FT:FID]` or
    /// `CHANGES WRITTEN del ID OLD` (OLD: the tenths the set held for ID
    /// before, -1 when it held none; about 25 bytes an entry).
    package struct SetChange: Sendable, Hashable {
        /// The set's `changes` counter after this change.
        package var changes: Int
        /// The `written` identity of the whole write the change applies to.
        package var written: Int
        /// The member entered, moved or left.
        package var member: MemberID
        /// The member's score in the set after the change; nil: removed.
        package var tenths: Int?
        /// The member's score in the set before the change; nil: not there
        /// (or a stored value that is not a score, which no reader holds).
        package var previous: Int?
        /// The set was trimmed after the change: its new floor. Every entry
        /// ranked below it is gone.
        package var trimmedTo: Match?

        package init(changes: Int, written: Int, member: MemberID, tenths: Int?, previous: Int?, trimmedTo: Match? = nil) {
            self.changes = changes
            self.written = written
            self.member = member
            self.tenths = tenths
            self.previous = previous
            self.trimmedTo = trimmedTo
        }

        /// Parses one log entry; nil for anything the script does not write.
        package static func parse(_ text: String) -> SetChange? {
            let parts = text.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count >= 5, let changes = Int(parts[0]), changes > 0, let written = Int(parts[1]), written > 0,
                let member = MemberID(parts[3]), member > 0
            else { return nil }
            switch parts[2] {
            case "del" where parts.count == 5:
                guard let previous = Self.tenths(parts[4]) else { return nil }
                return SetChange(changes: changes, written: written, member: member, tenths: nil, previous: previous >= 0 ? previous : nil)
            case "set" where parts.count == 6 || (parts.count == 8 && parts[6] == "trim"):
                guard let now = Self.tenths(parts[4]), now >= 0, let previous = Self.tenths(parts[5]) else { return nil }
                var change = SetChange(
                    changes: changes, written: written, member: member, tenths: now, previous: previous >= 0 ? previous : nil)
                if parts.count == 8 {
                    guard let floor = ScoreStore.parseFloor(String(parts[7])) else { return nil }
                    change.trimmedTo = floor
                }
                return change
            default:
                return nil
            }
        }

        /// `0` ... `100`, or `-1` (none); nil for anything else.
        private static func tenths(_ text: Substring) -> Int? {
            guard let value = Int(text), (-1...100).contains(value) else { return nil }
            return value
        }
    }

    /// What a reader holding a copy of a set learns from one atomic read of
    /// its meta and change log (``readMeta(_:shard:since:)``).
    package struct MetaRead: Sendable, Hashable {
        /// The set's meta now; nil when there is no set.
        package var meta: SetMeta?
        /// The changes that take the reader's copy exactly to ``meta``, in
        /// order (empty: the copy is current); nil when the copy cannot be
        /// brought there (no copy given, another whole write, more than L
        /// changes behind, a gap in the log, a set without a log): the
        /// reader reads the set whole.
        package var changes: [SetChange]?

        package init(meta: SetMeta?, changes: [SetChange]?) {
            self.meta = meta
            self.changes = changes
        }
    }

    /// `member`'s meta and, when `since` (the meta of the reader's copy) is
    /// given, the changes since that copy: one script (``Scripts/changesSince``),
    /// so the meta and the entries are of the same instant.
    package func readMeta(_ member: MemberID, shard: ShardID, since: SetMeta?, watch: Bool = false) throws(ScoreStoreError) -> MetaRead {
        try readMetasAndChanges([(member, since)], shard: shard, watch: watch)[0]
    }

    /// ``readMeta(_:shard:since:)`` for many members of one shard in one round
    /// trip (pipelined; a member without a copy costs a plain `HGETALL`
    /// unless `watch`). An error reply for any member throws.
    ///
    /// `watch`: the caller keeps copies of these sets and follows their
    /// change logs; each set's watch mark is set or renewed
    /// (``Configuration/watchSeconds``), so placements log its changes.
    package func readMetasAndChanges(
        _ members: [(member: MemberID, since: SetMeta?)], shard: ShardID, watch: Bool = false
    ) throws(ScoreStoreError) -> [MetaRead] {
        guard !members.isEmpty else { return [] }
        let length = configuration.changeLogLength
        let now = Int(Date().timeIntervalSince1970)
        let (mark, renewBelow) = watch ? (now + configuration.watchSeconds, now + configuration.watchSeconds / 2) : (0, 0)
        // The script for a copy to bring up to date or a mark to set; a plain HGETALL otherwise.
        func scripted(_ since: SetMeta?) -> Bool { since != nil || watch }
        return try onShard(shard) { (connection) throws(RedisError) -> [MetaRead] in
            func append(_ member: MemberID, since: SetMeta?, sha: String, on redis: RedisConnection) {
                guard scripted(since) else {
                    redis.append(["HGETALL", layout.metaKey(member)])
                    return
                }
                redis.append("EVALSHA") { command in
                    command.append(sha)
                    command.append(2)
                    command.append(layout.metaKey(member))
                    command.append(layout.logKey(member))
                    command.append(since?.changes ?? -1)
                    command.append(since?.written ?? 0)
                    command.append(length)
                    command.append(mark)
                    command.append(renewBelow)
                }
            }
            // Every server holding some of the members is written before any is read.
            let groups = try connection.route(members.map(\.member))
            for group in groups {
                let sha = group.indexes.contains { scripted(members[$0].since) } ? try connection.sha(of: Scripts.changesSince, on: group.redis) : ""
                for index in group.indexes { append(members[index].member, since: members[index].since, sha: sha, on: group.redis) }
                try group.redis.flush()
            }
            var replies = [RedisValue](repeating: .null, count: members.count)
            var rerouted: RedisError?
            for group in groups {
                let redis = group.redis
                for index in group.indexes { replies[index] = try redis.readReply() }
                let missing = group.indexes.filter { replies[$0].errorKind == "NOSCRIPT" }
                if !missing.isEmpty {
                    // The script cache was flushed: load again and resend those.
                    let reloaded = try connection.sha(of: Scripts.changesSince, on: redis, reload: true)
                    for index in missing { append(members[index].member, since: members[index].since, sha: reloaded, on: redis) }
                    for index in missing { replies[index] = try redis.readReply() }
                }
                // Every server's replies are read before a redirection is thrown.
                for index in group.indexes where rerouted == nil {
                    do throws(RedisError) { _ = try Self.routable(replies[index], from: redis) } catch { rerouted = error }
                }
            }
            if let rerouted { throw rerouted }
            var reads: [MetaRead] = []
            reads.reserveCapacity(members.count)
            for (index, reply) in replies.enumerated() {
                let since = members[index].since
                if case .error(let message) = reply {
                    throw RedisError.serverError(message, context: "shard \(shard)", command: scripted(since) ? "EVALSHA" : "HGETALL")
                }
                guard scripted(since) else {
                    reads.append(MetaRead(meta: Self.parseMeta(reply), changes: nil))
                    continue
                }
                guard let parts = reply.array, parts.count == 2, let entries = parts[1].array else {
                    throw RedisError(code: .serverError, message: "the changesSince script answered an unexpected reply", context: "shard \(shard)", command: "EVALSHA")
                }
                let meta = Self.parseMeta(parts[0])
                guard let since else {
                    reads.append(MetaRead(meta: meta, changes: nil))
                    continue
                }
                reads.append(MetaRead(meta: meta, changes: meta.flatMap { Self.changes(from: since, to: $0, entries: entries) }))
            }
            return reads
        }
    }

    /// The changes that take a copy read with meta `copy` to `meta`, from
    /// the log entries read with `meta`; nil on any doubt: another whole
    /// write (or the same `written` with another answers version, write time or N), a
    /// copy of a set without a `written` identity, entries that are not
    /// exactly `copy.changes + 1 ... meta.changes` of that write, an entry
    /// that does not parse.
    package static func changes(from copy: SetMeta, to meta: SetMeta, entries: [RedisValue]) -> [SetChange]? {
        guard copy.written > 0, meta.written == copy.written, meta.answersVersion == copy.answersVersion, meta.generatedAt == copy.generatedAt,
            meta.limit == copy.limit, !meta.isLegacy, !copy.isLegacy, meta.changes >= copy.changes,
            entries.count == meta.changes - copy.changes
        else { return nil }
        if entries.isEmpty { return meta == copy ? [] : nil }
        var changes: [SetChange] = []
        changes.reserveCapacity(entries.count)
        for (offset, entry) in entries.enumerated() {
            guard let text = entry.string, let change = SetChange.parse(text), change.changes == copy.changes + 1 + offset,
                change.written == copy.written
            else { return nil }
            changes.append(change)
        }
        return changes
    }
}
