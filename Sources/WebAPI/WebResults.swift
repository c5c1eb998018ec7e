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

/// One page of a member's ranked matches.
public struct MatchesPage: Sendable, Equatable {
    public var member: MemberID
    /// Matches in the member's set (deleted members left out).
    public var total: Int
    public var offset: Int
    public var limit: Int
    /// Unix seconds of the set's last whole write.
    public var generatedAt: Int64
    /// True when the set was missing or stale and this request regenerated it.
    public var regenerated: Bool
    public var matches: [Match]
}

/// A pair's score, or the rule that excludes the pair.
public struct PairScoreResult: Sendable, Equatable {
    public var member: MemberID
    public var other: MemberID
    public var outcome: PairOutcome
}

/// What `POST /login` did.
public enum LoginOutcome: String, Sendable {
    /// The member's set is there and current.
    case current
    /// The member had no set (or a stale one): a shard is assigned and an
    /// interactive rebuild is queued.
    case rebuildQueued = "rebuild_queued"
}
