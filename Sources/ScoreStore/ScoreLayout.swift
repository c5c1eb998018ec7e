import RedisClient
import Scoring

/// Where a member's set lives on its shard: SCORING.md's layout.
///
/// - B == 1: one hash `scores:{17}`.
/// - B > 1: B bucket hashes `scores:{17}:0` ... `scores:{17}:B-1`; the
///   field of member `other` goes to bucket `other % B`.
/// - Always: the bookkeeping hash `scores:{17}:meta` (``ScoreStore/SetMeta``),
///   which is never read as a match, and for a write in progress the
///   temporary buckets `scores:{17}:tmp:TOKEN:b`, which carry a TTL.
/// - Once placements changed the set: its change log `scores:{17}:log`
///   (``ScoreStore/SetChange``), a list capped at
///   ``ScoreStore/Configuration/changeLogLength`` entries, which lives and
///   dies with the set (a whole write, a removal and an eviction delete it).
///
/// Every key of a member carries `{id}`, a Redis Cluster hash tag, so they
/// share one slot and one Lua script or transaction may touch them all.
///
/// Choosing B: a bucket keeps Redis's compact listpack encoding while it
/// holds at most `hash-max-listpack-entries` (512 by default) fields. With
/// N = 5000, B = 64 gives ~78 fields a bucket. Measured here (redis 7.0,
/// `kindred-bench score-store`, 200 sets of 5000): B = 1 is a hashtable at
/// ~72 bytes a score; B = 16, 32, 64, 128 are listpacks at 11.4, 11.6, 12.2,
/// 13.4 bytes a score, and a whole-set write costs the server 0.88, 0.52,
/// 0.36, 0.30 us a field (an insert scans its listpack, so small buckets
/// write faster, while the per-bucket work of a write grows with B). Sorted
/// reads (~0.4 ms of server time) and offers (~8 us each) barely differ
/// between 32 and 128. B = 64 is the knee: within 5% of the smallest
/// footprint at nearly the fastest writes.
package struct ScoreLayout: Sendable, Hashable {
    /// The number of bucket hashes per member (B).
    package let buckets: Int

    package init(buckets: Int) {
        precondition((1...1024).contains(buckets), "buckets must be 1...1024")
        self.buckets = buckets
    }

    /// The default: 64 buckets (measured: see BENCHMARKS.md, "Score store").
    package static var `default`: ScoreLayout { ScoreLayout(buckets: 64) }

    /// The bucket of `other`'s field.
    @inlinable
    package func bucket(of other: MemberID) -> Int {
        buckets == 1 ? 0 : Int(other % UInt32(buckets))
    }

    /// `scores:{17}`: every key of the member starts with it.
    package func prefix(_ member: MemberID) -> String { "scores:{\(member)}" }

    /// The Redis Cluster hash slot of every key of `member`: that of its tag.
    package static func slot(of member: MemberID) -> HashSlot { HashSlot(key: String(member)) }

    /// The live key of bucket `bucket`.
    package func liveKey(_ member: MemberID, bucket: Int) -> String {
        buckets == 1 ? prefix(member) : "scores:{\(member)}:\(bucket)"
    }

    /// Every live bucket key, in bucket order.
    package func liveKeys(_ member: MemberID) -> [String] {
        (0..<buckets).map { liveKey(member, bucket: $0) }
    }

    /// `scores:{17}:meta`.
    package func metaKey(_ member: MemberID) -> String { "scores:{\(member)}:meta" }

    /// `scores:{17}:log`: the set's change log.
    package func logKey(_ member: MemberID) -> String { "scores:{\(member)}:log" }

    /// Every key a member's set may have besides temporary ones: the live
    /// buckets, the meta and the change log (what a removal unlinks).
    package func setKeys(_ member: MemberID) -> [String] {
        liveKeys(member) + [metaKey(member), logKey(member)]
    }

    /// The member whose meta key this is (`scores:{17}:meta` is 17's); nil
    /// for any other key.
    package func owner(ofMetaKey key: String) -> MemberID? {
        guard key.hasPrefix("scores:{"), key.hasSuffix("}:meta") else { return nil }
        let digits = key.dropFirst("scores:{".count).dropLast("}:meta".count)
        guard !digits.isEmpty, digits.count <= 10, digits.first != "0", digits.allSatisfy(\.isASCII),
            let id = MemberID(digits), id > 0
        else { return nil }
        return id
    }

    /// A temporary bucket of the write identified by `token`.
    package func temporaryKey(_ member: MemberID, token: String, bucket: Int) -> String {
        "scores:{\(member)}:tmp:\(token):\(bucket)"
    }
}
