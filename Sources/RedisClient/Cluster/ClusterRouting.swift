import KindredSupport

/// What to do after each attempt of one command on a Redis Cluster: a pure
/// state machine (no I/O, no clock of its own), so that every path is
/// tested with made-up replies and times, as the breaker and the backoff.
///
/// - A reply that is not a redirection or a cluster-state error is the
///   command's (error replies such as `WRONGTYPE` included).
/// - `MOVED slot node`: the map learns the slot's node; the command goes
///   there at once, and the whole map is read again before the next
///   command (a reshard or a failover moved more than one slot).
/// - `ASK slot node`: the command goes there once, preceded by `ASKING`;
///   the map stays (the slot is still migrating).
/// - `TRYAGAIN` (a multi-key command during a migration): the same node
///   again after a delay.
/// - `CLUSTERDOWN`, or no connection to the node (it died; a replica is
///   being promoted): the map is read again and the command sent where it
///   says, after a delay.
///
/// Delays double from ``Policy/initialDelay`` up to ``Policy/maximumDelay``;
/// past ``Policy/retryBudget`` from the first attempt, or after
/// ``Policy/maximumRedirects`` redirections, the command fails with the last
/// reason. A command retried after a broken connection may have run once
/// already: every command Kindred sends to a cluster is safe to repeat.
package struct ClusterRouting: Sendable {
    package struct Policy: Sendable, Hashable {
        /// Redirections (`MOVED`, `ASK`) one command may follow.
        package var maximumRedirects: Int
        /// How long a command keeps retrying an unavailable slot: a failover
        /// takes the cluster's node timeout plus an election.
        package var retryBudget: Duration
        package var initialDelay: Duration
        package var maximumDelay: Duration

        package init(
            maximumRedirects: Int = 16, retryBudget: Duration = .seconds(10), initialDelay: Duration = .milliseconds(50),
            maximumDelay: Duration = .seconds(1)
        ) {
            self.maximumRedirects = maximumRedirects
            self.retryBudget = retryBudget
            self.initialDelay = initialDelay
            self.maximumDelay = maximumDelay
        }

        /// The delays: doubling from ``initialDelay`` to ``maximumDelay``,
        /// refused when one would end past ``retryBudget``.
        package var backoff: BackoffPolicy {
            BackoffPolicy(
                initialDelay: initialDelay, maximumDelay: maximumDelay, budget: retryBudget, budgetRule: .refuseOvershoot)
        }
    }

    /// The next step.
    package enum Next: Sendable, Hashable {
        /// The reply is the command's answer.
        case done
        /// Send the command again after `delay`: to `node` (nil: wherever
        /// the map says, read again first when `refreshMap`), preceded by
        /// `ASKING` when `asking`.
        case retry(node: ClusterNode?, asking: Bool, refreshMap: Bool, after: Duration)
        /// Give up: the reason, for the error.
        case fail(String)
    }

    package let policy: Policy
    private var started: Duration?
    private var redirects = 0
    private var backoff: Backoff

    package init(policy: Policy = Policy()) {
        self.policy = policy
        backoff = Backoff(policy.backoff)
    }

    /// After a reply from `node` (asked at time `now`, on any clock that
    /// only moves forward). `map` learns from `MOVED`.
    package mutating func afterReply(
        _ reply: RedisValue, from node: ClusterNode, map: inout ClusterSlotMap, now: Duration
    ) -> Next {
        if started == nil { started = now }
        guard let message = reply.errorMessage else { return .done }
        if let redirect = ClusterRedirect(errorMessage: message, answeringHost: node.host) {
            redirects += 1
            guard redirects <= policy.maximumRedirects else {
                return .fail("more than \(policy.maximumRedirects) redirections (the cluster's slot map keeps changing)")
            }
            switch redirect {
            case .moved(let slot, let target):
                map.assign(slot, to: target)
                return .retry(node: target, asking: false, refreshMap: false, after: .zero)
            case .ask(_, let target):
                return .retry(node: target, asking: true, refreshMap: false, after: .zero)
            }
        }
        switch RedisError.kind(ofServerMessage: message) {
        case "TRYAGAIN":
            return delayed(.retry(node: node, asking: false, refreshMap: false, after: .zero), now: now, reason: message)
        case "CLUSTERDOWN":
            return delayed(.retry(node: nil, asking: false, refreshMap: true, after: .zero), now: now, reason: message)
        default:
            return .done
        }
    }

    /// After an operation of several commands (a caller that pipelines to
    /// nodes itself) met a cluster error reply of kind `kind` (`MOVED`,
    /// `ASK`, `TRYAGAIN`, `CLUSTERDOWN`): `MOVED` goes again at once on a
    /// map read again; the others after a delay, on a fresh map (such a
    /// caller sends no `ASKING`, so `ASK` waits for the migration to end).
    /// Any other kind is `.done`.
    package mutating func afterClusterError(kind: String?, message: String, now: Duration) -> Next {
        if started == nil { started = now }
        switch kind {
        case "MOVED":
            redirects += 1
            guard redirects <= policy.maximumRedirects else {
                return .fail("more than \(policy.maximumRedirects) redirections (the cluster's slot map keeps changing)")
            }
            return .retry(node: nil, asking: false, refreshMap: true, after: .zero)
        case "ASK", "TRYAGAIN", "CLUSTERDOWN":
            return delayed(.retry(node: nil, asking: false, refreshMap: true, after: .zero), now: now, reason: message)
        default:
            return .done
        }
    }

    /// After `node` could not be reached, or its connection broke.
    package mutating func afterFailure(_ error: RedisError, now: Duration) -> Next {
        if started == nil { started = now }
        return delayed(.retry(node: nil, asking: false, refreshMap: true, after: .zero), now: now, reason: error.description)
    }

    /// `next` after the next delay, or a failure when that would pass the budget.
    private mutating func delayed(_ next: Next, now: Duration, reason: String) -> Next {
        guard case .retry(let node, let asking, let refresh, _) = next else { return next }
        let elapsed = now - (started ?? now)
        guard let delay = backoff.next(elapsed: elapsed) else {
            return .fail("still unavailable after \(elapsed) (retry budget \(policy.retryBudget)): \(reason)")
        }
        return .retry(node: node, asking: asking, refreshMap: refresh, after: delay)
    }
}
