import Foundation
import KindredCore
import KindredSupport
import MemberStore
import RedisClient
import ScoreStore
import Synchronization
import WorkQueue

/// The dependency checks behind the web backend's `/readyz` and `/healthz`
/// (docs/observability.md): MySQL, the queue's Redis and every shard, each
/// on a connection of its own with short timeouts, run on a thread of its
/// own: never on an I/O thread (a hung dependency there would hold the
/// threads requests need, and the probes would queue behind requests) and
/// never on Swift's cooperative pool.
///
/// Concurrent probes share one check in flight per dependency, and a result
/// is reused for ``Settings/cacheTime``, so a burst of probes costs one
/// round trip per dependency. A probe waits at most ``Settings/bound``: a
/// dependency whose check has not finished by then has not answered within
/// the bound and is reported unavailable (the readiness rule then decides:
/// MySQL unavailable is still ready while the directory cache is warm).
final class DependencyProbes: Sendable {
    struct Settings: Sendable {
        /// How long a finished check answers later probes.
        var cacheTime: Duration = .seconds(1)
        /// The longest a probe waits for its checks.
        var bound: Duration = .seconds(2)
        /// MySQL's connect, read and write timeouts (whole seconds: libmariadb's unit).
        var mysqlTimeout: Duration = .seconds(1)
        /// The queue's and the shards' connect timeout.
        var redisConnectTimeout: Duration = .milliseconds(500)
        /// The queue's and the shards' read timeout.
        var redisReadTimeout: Duration = .seconds(1)
    }

    /// What one probe found: true for a dependency that answered.
    struct Results: Sendable {
        var mysql: Bool
        var queue: Bool
        var shards: [(id: ShardID, up: Bool)]
    }

    let settings: Settings
    private let core: GenerationCore
    private let mysql: SharedCheck
    private let queue: SharedCheck
    private let shardChecks: ShardChecks

    init(core: GenerationCore, queue workQueue: WorkQueue, settings: Settings = Settings()) {
        self.core = core
        self.settings = settings
        let configuration = core.sessions.store.withTimeouts(settings.mysqlTimeout)
        // Each check opens its own session on its thread and closes it.
        let database = ConnectionCheck<StoreSession>(
            open: { try StoreSession.connect(configuration) },
            check: { try $0.ping() },
            close: { $0.close() })
        mysql = SharedCheck(name: "probe-mysql") { database.check() }
        let address = core.sessions.queue
        let redis = ConnectionCheck<QueueConnection>(
            open: {
                guard let address else { throw QueueError.unexpectedReply("this program has no queue configured") }
                return try Self.connect(address, settings)
            },
            check: { try workQueue.ping(on: $0) },
            close: { $0.close() })
        queue = SharedCheck(name: "probe-queue") { redis.check() }
        shardChecks = ShardChecks()
    }

    /// Checks every dependency (or takes a result younger than
    /// ``Settings/cacheTime``), waiting at most ``Settings/bound``.
    func check() async -> Results {
        let now = ContinuousClock.now
        let since = now - settings.cacheTime
        let deadline = now + settings.bound
        let shards = shardChecks.current(core.scores.manager.shards) { endpoint in
            shardCheck(endpoint)
        }
        // Every check starts before the probe waits for any: they run side by side.
        mysql.start(unlessFinishedSince: since)
        queue.start(unlessFinishedSince: since)
        for (_, check) in shards { check.start(unlessFinishedSince: since) }
        let mysqlUp = await mysql.outcome(finishedSince: since, deadline: deadline) ?? false
        let queueUp = await queue.outcome(finishedSince: since, deadline: deadline) ?? false
        var states: [(id: ShardID, up: Bool)] = []
        for (id, check) in shards {
            states.append((id, await check.outcome(finishedSince: since, deadline: deadline) ?? false))
        }
        return Results(mysql: mysqlUp, queue: queueUp, shards: states)
    }

    /// A shard answers when its breaker is not open (reads of it fail at once
    /// while it is: this instance cannot serve it) and a read of its marker,
    /// on the probe's own connection, answers.
    private func shardCheck(_ endpoint: ShardEndpoint) -> SharedCheck {
        let settings = settings
        let manager = core.scores.manager
        let markerKey = core.scores.configuration.markerKey
        let check: @Sendable () -> Bool
        if endpoint.isCluster {
            // The marker's master answers (a cluster shard answers its reads when each slot's does;
            // the store's own breaker covers the rest).
            let connection = ConnectionCheck<ClusterConnection>(
                open: { Self.connectCluster(endpoint.address, settings) },
                check: { _ = try $0.send(["GET", markerKey], key: markerKey).checked(context: endpoint.description) },
                close: { $0.close() })
            check = { connection.check() }
        } else {
            let connection = ConnectionCheck<RedisConnection>(
                open: { try Self.connect(endpoint.address, settings) },
                check: { _ = try $0.sendChecked(["GET", markerKey]) },
                close: { $0.close() })
            check = { connection.check() }
        }
        return SharedCheck(name: "probe-shard-\(endpoint.id)") {
            if manager.breakerState(of: endpoint.id) == .open { return false }
            return check()
        }
    }

    /// A connection with the probe's timeouts and no retry of `BUSY` or
    /// `LOADING` (a shard still loading its data does not answer reads).
    /// A cluster shard's connection (nodes connect on first use) with the
    /// probe's timeouts, retrying an unavailable slot no longer than a read.
    private static func connectCluster(_ address: RedisURL, _ settings: Settings) -> ClusterConnection {
        ClusterConnection(configuration: ClusterConnection.Configuration(
            seeds: [ClusterNode(host: address.host, port: address.port)],
            node: RedisConnection.Configuration(
                host: address.host, port: address.port, user: address.user, password: address.password,
                connectTimeout: settings.redisConnectTimeout, readTimeout: settings.redisReadTimeout, keepAlive: true,
                retry: .none),
            routing: ClusterRouting.Policy(retryBudget: settings.redisReadTimeout)))
    }

    private static func connect(_ address: RedisURL, _ settings: Settings) throws -> RedisConnection {
        try RedisConnection(configuration: RedisConnection.Configuration(
            host: address.host, port: address.port, user: address.user, password: address.password,
            database: address.database, connectTimeout: settings.redisConnectTimeout, readTimeout: settings.redisReadTimeout,
            keepAlive: true, retry: .none))
    }

    /// The queue's connection with the probe's timeouts (on a cluster, an
    /// unavailable slot is retried no longer than a read).
    private static func connect(_ address: QueueAddress, _ settings: Settings) throws -> QueueConnection {
        try QueueConnection(
            address: address,
            configuration: RedisConnection.Configuration(
                host: address.url.host, port: address.url.port, connectTimeout: settings.redisConnectTimeout,
                readTimeout: settings.redisReadTimeout, keepAlive: true, retry: .none),
            routing: ClusterRouting.Policy(retryBudget: settings.redisReadTimeout))
    }
}

/// The checks of the shards in the shard list, by endpoint: a shard added
/// gets a check, one removed (or moved to another address) loses its.
private final class ShardChecks: Sendable {
    private let checks = Mutex<[ShardID: (endpoint: ShardEndpoint, check: SharedCheck)]>([:])

    func current(_ endpoints: [ShardEndpoint], make: (ShardEndpoint) -> SharedCheck) -> [(ShardID, SharedCheck)] {
        checks.withLock { checks in
            var kept: [ShardID: (endpoint: ShardEndpoint, check: SharedCheck)] = [:]
            for endpoint in endpoints {
                if let existing = checks[endpoint.id], existing.endpoint == endpoint {
                    kept[endpoint.id] = existing
                } else {
                    kept[endpoint.id] = (endpoint, make(endpoint))
                }
            }
            checks = kept
            return endpoints.map { ($0.id, kept[$0.id]!.check) }
        }
    }
}

/// One dependency's check, shared by the probes that want it: at most one
/// runs at a time, on a thread started for it (the blocking C call stays off
/// the cooperative pool and off the I/O threads), and every probe waiting
/// when it finishes gets its outcome. Probes wait suspended, each until its
/// own deadline at most.
final class SharedCheck: Sendable {
    private struct Waiter {
        let continuation: CheckedContinuation<Bool?, Never>
        var timer: Task<Void, Never>?
    }

    private struct State {
        var last: (up: Bool, at: ContinuousClock.Instant)?
        /// A check runs; `body` runs on one thread at a time.
        var running = false
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
        var started = 0
    }

    private let name: String
    private let body: @Sendable () -> Bool
    private let state = Mutex(State())

    /// - Parameter body: the check, blocking and bounded by its own timeouts.
    init(name: String, body: @escaping @Sendable () -> Bool) {
        self.name = name
        self.body = body
    }

    /// Checks run so far (started).
    var checksStarted: Int { state.withLock { $0.started } }

    /// Starts a check unless one is running or the last one finished at or
    /// after `since`.
    func start(unlessFinishedSince since: ContinuousClock.Instant) {
        let start = state.withLock { state -> Bool in
            if state.running { return false }
            if let last = state.last, last.at >= since { return false }
            state.running = true
            state.started += 1
            return true
        }
        if start { launch() }
    }

    /// The outcome of a check finished at or after `since`: at once when the
    /// last one did, else the running one's (started if none runs) when it
    /// finishes by `deadline`; nil when it has not.
    func outcome(finishedSince since: ContinuousClock.Instant, deadline: ContinuousClock.Instant) async -> Bool? {
        start(unlessFinishedSince: since)
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool?, Never>) in
            let ready = state.withLock { state -> Bool?? in
                if let last = state.last, last.at >= since { return .some(last.up) }
                if !state.running {
                    // Cannot happen (started above, and a finished check is
                    // after `since`); answer rather than wait for nothing.
                    return .some(nil)
                }
                state.nextWaiter += 1
                let id = state.nextWaiter
                let timer = Task { [weak self] in
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    self?.expire(id)
                }
                state.waiters[id] = Waiter(continuation: continuation, timer: timer)
                return .none
            }
            if case .some(let outcome) = ready { continuation.resume(returning: outcome) }
        }
    }

    private func expire(_ id: Int) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.continuation.resume(returning: nil)
    }

    private func launch() {
        startThread(name: name) { [self] in
            let up = body()
            let done = state.withLock { state -> [Waiter] in
                state.last = (up, ContinuousClock.now)
                state.running = false
                defer { state.waiters.removeAll() }
                return Array(state.waiters.values)
            }
            for waiter in done {
                waiter.timer?.cancel()
                waiter.continuation.resume(returning: up)
            }
        }
    }
}

/// One check of a dependency on a connection of its own: opened on the
/// check's thread, probed, closed before the check returns, so no
/// connection outlives its thread (a check runs on a thread started for it,
/// ``SharedCheck``). A connect costs about a millisecond; checks come every
/// few seconds at most, and concurrent probes share one.
struct ConnectionCheck<Connection>: Sendable {
    private let open: @Sendable () throws -> Connection
    private let probe: @Sendable (Connection) throws -> Void
    private let closeConnection: @Sendable (Connection) -> Void

    init(
        open: @escaping @Sendable () throws -> Connection, check: @escaping @Sendable (Connection) throws -> Void,
        close: @escaping @Sendable (Connection) -> Void
    ) {
        self.open = open
        self.probe = check
        self.closeConnection = close
    }

    /// Whether the dependency answers now, within the connection's own
    /// connect and read timeouts. Blocking.
    func check() -> Bool {
        guard let connection = try? open() else { return false }
        defer { closeConnection(connection) }
        return (try? probe(connection)) != nil
    }
}

/// A value made by the first caller that needs it.
final class OnFirstUse<Value: Sendable>: Sendable {
    private let made = Mutex<Value?>(nil)

    func value(_ make: () -> Value) -> Value {
        made.withLock { made in
            if let made { return made }
            let value = make()
            made = value
            return value
        }
    }
}
