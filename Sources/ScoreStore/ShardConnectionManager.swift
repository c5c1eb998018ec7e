import KindredSupport
import RedisClient

/// Connections to the score shards, opened lazily, pooled, reconnected with
/// backoff, and guarded by a circuit breaker per shard.
///
/// - *Lazy*: nothing connects until a caller first needs a shard; a process
///   that touches one shard of ten holds connections to that one only.
/// - *Pooled*: each shard has up to ``Configuration/maxConnectionsPerShard``
///   connections, one per concurrent caller; a caller beyond that waits (at
///   most ``Configuration/checkoutTimeout``) for one to come back.
/// - *Named*: every connection sends `CLIENT SETNAME` (``Configuration/clientName``).
/// - *Reconnect with backoff*: a connection that breaks is closed and
///   dropped; the next caller opens a new one. After a failed connect the
///   next attempt waits (``ReconnectBackoff``: exponential, jittered by the
///   injected source), so callers wait at most the backoff's `maxDelay`.
/// - *Circuit breaker*: ``CircuitBreaker``; after `failureThreshold`
///   consecutive transport failures a shard is down for the cool-off, and
///   callers fail at once with ``ScoreStoreError/Code/shardUnavailable``.
/// - *Idle timeout*: connections unused for ``Configuration/idleTimeout``
///   are closed on the next checkout of any shard, by
///   ``closeIdleConnections()``, or by the reaper thread
///   (``startIdleReaper(every:)``).
/// - *Stale connections*: a pooled connection that turns out broken when
///   reused (the shard restarted while it sat idle) is not counted as a
///   failure: the idle ones of that shard are dropped and the operation runs
///   once more on a fresh connection. Every operation of ``ScoreStore`` is
///   safe to repeat.
///
/// Threading: thread-safe; its calls block (connects, backoff waits, pool
/// waits) and must run on plain threads, never on Swift's cooperative pool.
/// One lock guards the bookkeeping; no network call happens under it.
package final class ShardConnectionManager: @unchecked Sendable {
    // Why this is safe: every mutable property (`pools`, `reaperRunning`,
    // `closed`) and every `Pool` is only touched inside `locked(_:)`, that is
    // with `lock` held; a `Pool` reference leaves the lock only inside a
    // `Lease` or a `Plan`, and is touched again only under the lock. Each
    // connection is handed to one thread at a time (checked out under the
    // lock, used by that thread only, checked back in under the lock), and
    // `deinit` runs when no thread holds a reference.

    package struct Configuration: Sendable {
        package var connectTimeout: Duration = .seconds(1)
        /// Bounds each read and write (nil: none). A timeout breaks the connection.
        package var readTimeout: Duration? = .seconds(5)
        /// `BUSY`/`LOADING` retry of single commands.
        package var retry: RedisRetryPolicy = .default
        package var maxConnectionsPerShard = 8
        package var idleTimeout: Duration = .seconds(60)
        /// How long a caller waits for a pooled connection when all are lent.
        package var checkoutTimeout: Duration = .seconds(5)
        /// The `CLIENT SETNAME` of every connection.
        package var clientName = "kindred"
        package var backoff = ReconnectBackoff.Configuration()
        package var breaker = CircuitBreaker.Configuration()

        package init() {}
    }

    /// A shard's health, for metrics and `kindred shards list`.
    package struct ShardHealth: Sendable, Hashable {
        package var endpoint: ShardEndpoint
        package var breaker: CircuitBreaker.State
        package var consecutiveFailures: Int
        /// Connections open: lent plus idle.
        package var openConnections: Int
        package var idleConnections: Int
    }

    private final class Pool {
        let endpoint: ShardEndpoint
        var idle: [ShardConnection] = []  // most recently used last
        var open = 0  // lent + idle + being opened
        var breaker: CircuitBreaker
        var backoff: ReconnectBackoff
        var retired = false

        init(endpoint: ShardEndpoint, configuration: Configuration) {
            self.endpoint = endpoint
            breaker = CircuitBreaker(configuration: configuration.breaker)
            backoff = ReconnectBackoff(configuration: configuration.backoff)
        }
    }

    /// A connection lent to a caller.
    private struct Lease {
        let connection: ShardConnection
        let pool: Pool
        let reused: Bool
        let trial: Bool
    }

    package let configuration: Configuration
    private let clock: @Sendable () -> ContinuousClock.Instant
    private let jitter: @Sendable () -> Double
    private let lock = Monitor(())
    private var pools: [ShardID: Pool] = [:]
    private var reaperRunning = false
    private var closed = false

    /// - Parameters:
    ///   - shards: the shards, as the shards table lists them.
    ///   - clock: the current instant, for the breaker, backoff and idle
    ///     timeout (tests inject a fake one).
    ///   - jitter: a number in `0...1` per failed connect (tests inject a fixed one).
    package init(
        shards: [ShardEndpoint],
        configuration: Configuration = Configuration(),
        clock: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }
    ) {
        precondition(configuration.maxConnectionsPerShard >= 1, "maxConnectionsPerShard must be at least 1")
        self.configuration = configuration
        self.clock = clock
        self.jitter = jitter
        for endpoint in shards {
            pools[endpoint.id] = Pool(endpoint: endpoint, configuration: configuration)
        }
    }

    deinit {
        for pool in pools.values {
            for connection in pool.idle { connection.close() }
        }
    }

    /// Runs `body` with `lock` held, on its condition. The bookkeeping is
    /// not Sendable (see the type's comment): the result leaves through a
    /// local rather than as a `sending` value.
    private func locked<T, E: Error>(_ body: (Monitor<Void>.Condition) throws(E) -> T) throws(E) -> T {
        var result: T?
        try lock.withLock { (_, condition) throws(E) in result = try body(condition) }
        return result!
    }

    // MARK: The shard list

    /// The shards known now, by id.
    package var shards: [ShardEndpoint] {
        locked { condition in pools.values.map(\.endpoint) }.sorted { $0.id < $1.id }
    }

    /// Replaces the shard list. New shards are added (not connected yet);
    /// shards gone from the list, or whose address changed, have their idle
    /// connections closed, and their lent ones are closed when returned.
    /// Breaker and backoff state of unchanged shards is kept.
    package func update(shards: [ShardEndpoint]) {
        var toClose: [ShardConnection] = []
        locked { condition in
            let wanted = Dictionary(shards.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
            for (id, pool) in pools where wanted[id] != pool.endpoint {
                pool.retired = true
                toClose += pool.idle
                pool.idle.removeAll()
                pools[id] = nil
            }
            for (id, endpoint) in wanted where pools[id] == nil {
                pools[id] = Pool(endpoint: endpoint, configuration: configuration)
            }
            condition.broadcast()
        }
        for connection in toClose { connection.close() }
    }

    // MARK: Lending connections

    /// Lends a connection to `shard` to `body`, on the calling thread.
    ///
    /// - Throws: ``ScoreStoreError/Code/unknownShard``,
    ///   ``ScoreStoreError/Code/shardUnavailable`` (breaker open: at once),
    ///   ``ScoreStoreError/Code/connectionFailed``,
    ///   ``ScoreStoreError/Code/timedOut`` (no connection free in time), or
    ///   what `body` throws. A transport failure thrown by `body` closes the
    ///   connection and counts against the shard's breaker.
    package func withConnection<T>(
        to shard: ShardID,
        _ body: (ShardConnection) throws(ScoreStoreError) -> T
    ) throws(ScoreStoreError) -> T {
        var fresh = false
        while true {
            let lease = try checkout(shard, fresh: fresh)
            do {
                let value = try body(lease.connection)
                checkin(lease, failed: nil)
                return value
            } catch {
                if error.isTransportFailure, error.code == .connectionBroken, lease.reused, !fresh {
                    // A connection that sat idle died meanwhile (a restart):
                    // says nothing about the shard now. Try once on a new one.
                    discardStale(lease)
                    fresh = true
                    continue
                }
                checkin(lease, failed: error.isTransportFailure ? error : nil)
                throw error
            }
        }
    }

    /// ``withConnection(to:_:)`` for work that reports its own failure
    /// instead of throwing it (work spanning several shards' connections
    /// at once): a reported transport failure counts for the shard's
    /// breaker and the connection is not reused. No retry on a fresh
    /// connection: the caller decides what to do again.
    package func withConnection<T>(
        to shard: ShardID, reporting body: (ShardConnection) -> (T, ScoreStoreError?)
    ) throws(ScoreStoreError) -> T {
        let lease = try checkout(shard, fresh: false)
        let (value, failure) = body(lease.connection)
        checkin(lease, failed: failure.flatMap { $0.isTransportFailure ? $0 : nil })
        return value
    }

    private enum Plan {
        case reuse(Lease)
        case open(Pool, trial: Bool, wait: Duration)
    }

    private func checkout(_ shard: ShardID, fresh: Bool) throws(ScoreStoreError) -> Lease {
        var expired: [ShardConnection] = []
        defer { for connection in expired { connection.close() } }
        // Waiting for a free connection is real waiting: the real clock.
        let deadline = ContinuousClock.now + configuration.checkoutTimeout
        // Under the lock: decide, and either take an idle connection or
        // reserve a slot to open one.
        let plan: Plan = try locked { condition throws(ScoreStoreError) -> Plan in
            precondition(!closed, "ShardConnectionManager used after close()")
            while true {
                let now = clock()
                expired += takeExpiredIdle(now: now, condition)
                guard let pool = pools[shard] else {
                    throw ScoreStoreError(code: .unknownShard, message: "shard \(shard) is not in the shard list", shard: shard)
                }
                switch pool.breaker.decide(at: now) {
                case .reject(let retryAfter):
                    throw ScoreStoreError(
                        code: .shardUnavailable,
                        message: "\(pool.endpoint) is marked down after repeated failures",
                        shard: shard, retryAfter: retryAfter)
                case .trial:
                    // The idle connections were closed when the breaker opened.
                    pool.open += 1
                    return .open(pool, trial: true, wait: .zero)
                case .allow:
                    if !fresh, let connection = pool.idle.popLast() {
                        return .reuse(Lease(connection: connection, pool: pool, reused: true, trial: false))
                    }
                    if pool.open < configuration.maxConnectionsPerShard {
                        pool.open += 1
                        return .open(pool, trial: false, wait: pool.backoff.remainingDelay(at: now))
                    }
                    let realNow = ContinuousClock.now
                    if realNow >= deadline {
                        throw ScoreStoreError(
                            code: .timedOut,
                            message: "no connection to \(pool.endpoint) came free within \(configuration.checkoutTimeout)",
                            shard: shard)
                    }
                    _ = condition.wait(timeout: realNow.duration(to: deadline))
                }
            }
        }
        let pool: Pool
        let trial: Bool
        switch plan {
        case .reuse(let lease):
            return lease
        case .open(let chosen, let isTrial, let wait):
            pool = chosen
            trial = isTrial
            // Outside the lock: wait out the backoff (at most its maxDelay).
            sleepThread(wait)
        }
        do {
            let connection = try ShardConnection.open(pool.endpoint, configuration: configuration, now: clock())
            locked { condition in pool.backoff.recordSuccess() }
            return Lease(connection: connection, pool: pool, reused: false, trial: trial)
        } catch {
            let failure = ScoreStoreError(error, shard: shard)
            let idle = locked { condition -> [ShardConnection] in
                pool.open -= 1
                pool.backoff.recordFailure(at: clock(), jitter: jitter())
                defer { condition.broadcast() }
                return recordFailure(pool)
            }
            for connection in idle { connection.close() }
            throw failure
        }
    }

    /// Counts a transport failure (the lock held); when that opens the
    /// breaker, takes the idle connections out for closing.
    private func recordFailure(_ pool: Pool) -> [ShardConnection] {
        guard pool.breaker.recordFailure(at: clock()) else { return [] }
        let idle = pool.idle
        pool.idle.removeAll()
        pool.open -= idle.count
        return idle
    }

    /// Takes a connection back. `failed` is the transport failure the caller
    /// met, which closes the connection and counts against the breaker; any
    /// other outcome means the shard answered.
    private func checkin(_ lease: Lease, failed: ScoreStoreError?) {
        let connection = lease.connection
        let pool = lease.pool
        let keep = failed == nil && connection.isReusable
        var toClose: [ShardConnection] = keep ? [] : [connection]
        locked { condition in
            let now = clock()
            if failed != nil {
                toClose += recordFailure(pool)
            } else {
                pool.breaker.recordSuccess()
            }
            if keep && !pool.retired && !closed {
                connection.lastUsed = now
                pool.idle.append(connection)
            } else {
                pool.open -= 1
                if keep { toClose.append(connection) }
            }
            condition.broadcast()
        }
        for connection in toClose { connection.close() }
    }

    /// A reused connection was found dead: close it and the other idle ones
    /// of its shard (opened before the same restart), without counting a failure.
    private func discardStale(_ lease: Lease) {
        let idle = locked { condition -> [ShardConnection] in
            let idle = lease.pool.idle
            lease.pool.idle.removeAll()
            lease.pool.open -= idle.count + 1
            condition.broadcast()
            return idle
        }
        lease.connection.close()
        for connection in idle { connection.close() }
    }

    // MARK: Idle connections

    /// Removes idle connections unused for the idle timeout (the lock held);
    /// the caller closes them outside the lock.
    private func takeExpiredIdle(now: ContinuousClock.Instant, _ condition: Monitor<Void>.Condition) -> [ShardConnection] {
        var expired: [ShardConnection] = []
        for pool in pools.values {
            // `idle` is ordered by last use: the expired ones are a prefix.
            let stale = pool.idle.prefix { now - $0.lastUsed >= configuration.idleTimeout }
            guard !stale.isEmpty else { continue }
            expired += stale
            pool.idle.removeFirst(stale.count)
            pool.open -= stale.count
        }
        if !expired.isEmpty { condition.broadcast() }
        return expired
    }

    /// Closes every connection that has been idle for the idle timeout.
    /// Returns how many it closed.
    @discardableResult
    package func closeIdleConnections() -> Int {
        let expired = locked { condition in takeExpiredIdle(now: clock(), condition) }
        for connection in expired { connection.close() }
        return expired.count
    }

    /// Starts a thread that calls ``closeIdleConnections()`` every
    /// `interval` until ``close()``. Starting it twice does nothing.
    package func startIdleReaper(every interval: Duration = .seconds(5)) {
        let start = locked { condition -> Bool in
            defer { reaperRunning = true }
            return !reaperRunning && !closed
        }
        guard start else { return }
        startThread(name: "kindred-reaper") { [weak self] in
            while let manager = self {
                let stop = manager.locked { condition -> Bool in
                    if !manager.closed { _ = condition.wait(timeout: interval) }
                    return manager.closed
                }
                if stop { return }
                manager.closeIdleConnections()
            }
        }
    }

    /// Closes every idle connection and stops the reaper; lent connections
    /// are closed as they come back. Using the manager afterwards is a
    /// programming error.
    package func close() {
        let idle = locked { condition -> [ShardConnection] in
            closed = true
            var idle: [ShardConnection] = []
            for pool in pools.values {
                idle += pool.idle
                pool.open -= pool.idle.count
                pool.idle.removeAll()
            }
            condition.broadcast()
            return idle
        }
        for connection in idle { connection.close() }
    }

    // MARK: Health

    /// Each shard's breaker state and connection counts, by shard id.
    package func health() -> [ShardID: ShardHealth] {
        locked { condition in
            let now = clock()
            var result: [ShardID: ShardHealth] = [:]
            for (id, pool) in pools {
                result[id] = ShardHealth(
                    endpoint: pool.endpoint,
                    breaker: pool.breaker.state(at: now),
                    consecutiveFailures: pool.breaker.consecutiveFailures,
                    openConnections: pool.open,
                    idleConnections: pool.idle.count)
            }
            return result
        }
    }

    /// The breaker state of `shard`; nil for an unknown shard.
    package func breakerState(of shard: ShardID) -> CircuitBreaker.State? {
        locked { condition in pools[shard].map { $0.breaker.state(at: clock()) } }
    }
}
