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

/// The web backend's settings.
package struct WebSettings: Sendable {
    /// The score store as the web backend uses it: a cluster shard's
    /// operation that a dead master holds up is retried for 1 s at most
    /// (a read then answers 503 with `Retry-After` while the replica takes
    /// over, instead of waiting out the worker's 10 s budget); a moved slot
    /// is still followed at once.
    package static var scoreStore: ScoreStore.Configuration {
        var configuration = ScoreStore.Configuration()
        configuration.clusterRouting.retryBudget = .seconds(1)
        return configuration
    }

    /// Threads for the short blocking calls of requests (Redis and MySQL round trips).
    package var ioThreads = 8
    /// Threads that serve pages of cached sets to batches of requests (one
    /// round trip per shard and one to the queue's Redis per batch).
    package var readThreads = 2
    /// The most requests one batch serves.
    package var readBatch = 64
    /// Threads that regenerate sets on the spot (each a scan of the whole
    /// population): few, so a burst of dormant members cannot starve reads.
    package var generationThreads = 2
    /// The largest page a client may ask for.
    package var maxPageSize = 500
    /// Sets kept in the in-process ranked cache. A cached set that
    /// placements changed is brought up to date from its change log, so
    /// every page is exact to the meta read for it.
    package var cachedSets = 2_000
    /// `Retry-After` on a 503.
    package var retryAfterSeconds = 5
    /// MySQL retry budget of one request (the worker waits longer).
    package var mysqlRetry = RetryPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(500), giveUpAfter: .seconds(2))
    /// The largest member document `PUT` accepts.
    package var maxBodyBytes = 1 << 20

    package init() {}
}
