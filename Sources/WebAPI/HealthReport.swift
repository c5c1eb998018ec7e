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

/// Dependency health for `/healthz` and `/readyz`.
///
/// *Ready* (take traffic): MySQL answers or the directory cache holds
/// members (their sets can be read without MySQL), the population snapshot
/// is loaded (always, once the server listens: it is loaded before), and
/// at least one shard answers. *Healthy*: every dependency answers. Ready
/// but not healthy is *degraded*: a shard or the queue down costs some
/// requests a 503, and pulling the instance would cost all of them.
package struct HealthReport: Sendable {
    package var mysql: String
    package var queue: String
    package var shards: [(id: UInt32, state: String)]
    package var snapshotMembers: Int
    package var snapshotAgeSeconds: Double
    /// Members whose shard the directory cache holds.
    package var directoryCached: Int
    /// The population snapshot is loaded.
    package var snapshotLoaded: Bool

    package init(
        mysql: String, queue: String, shards: [(id: UInt32, state: String)], snapshotMembers: Int, snapshotAgeSeconds: Double,
        directoryCached: Int, snapshotLoaded: Bool
    ) {
        self.mysql = mysql
        self.queue = queue
        self.shards = shards
        self.snapshotMembers = snapshotMembers
        self.snapshotAgeSeconds = snapshotAgeSeconds
        self.directoryCached = directoryCached
        self.snapshotLoaded = snapshotLoaded
    }

    package var healthy: Bool { ready && mysql == "ok" && queue == "ok" && shards.allSatisfy { $0.state == "ok" } }
    package var ready: Bool { notReadyReasons.isEmpty }
    /// `ok`, `degraded` (ready, something down) or `not_ready`.
    package var status: String { !ready ? "not_ready" : healthy ? "ok" : "degraded" }

    /// Why the instance should not take traffic (empty when it should).
    package var notReadyReasons: [String] {
        var reasons: [String] = []
        if mysql != "ok" && directoryCached == 0 { reasons.append("the member store is unavailable and no member's shard is cached") }
        if !snapshotLoaded { reasons.append("the population snapshot is not loaded") }
        if !shards.contains(where: { $0.state == "ok" }) {
            reasons.append(shards.isEmpty ? "no shard is configured" : "no shard is reachable")
        }
        return reasons
    }
}
