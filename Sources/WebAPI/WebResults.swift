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
package struct MatchesPage: Sendable, Equatable {
    package var member: MemberID
    /// Matches in the member's set (deleted members left out).
    package var total: Int
    package var offset: Int
    package var limit: Int
    /// Unix seconds of the set's last whole write.
    package var generatedAt: Int64
    /// True when the set was missing or stale and this request regenerated it.
    package var regenerated: Bool
    package var matches: [Match]
}

/// A pair's score, or the rule that excludes the pair.
package struct PairScoreResult: Sendable, Equatable {
    package var member: MemberID
    package var other: MemberID
    package var outcome: PairOutcome
}

/// What `POST /login` did.
package enum LoginOutcome: String, Sendable {
    /// The member's set is there and current.
    case current
    /// The member had no set (or a stale one): a shard is assigned and an
    /// interactive rebuild is queued.
    case rebuildQueued = "rebuild_queued"
}
