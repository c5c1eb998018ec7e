import Foundation
@testable import KindredCore
@testable import KindredTestKit
@testable import KindredWorker
import Logging
import MariaDBClient
@_spi(Testing) import MemberStore
import Prometheus
import RedisClient
import ScoreStore
import Scoring
import ServiceLifecycle
import Testing
import TestSupport
import WorkQueue

/// The worker daemon's background loops (and the web backend's, which are
/// the same `Maintenance` services: metrics collector, snapshot refresher,
/// shard-list follower) across a restart of the queue's Redis or of MySQL:
/// each loop runs alone with a short interval, does its work once, sees its
/// server restart, and must do its work again on its next run.
/// Serialized: each test restarts servers of its own.
@Suite("Background loops across server restarts", .serialized, .timeLimit(.minutes(10)))
struct ReconnectTests {
    /// Every loop's interval here: long enough that a restart (~0.1-0.5 s)
    /// falls between two runs, short enough to keep the test quick.
    static let interval: Duration = .seconds(1)
    /// The longest wait for a loop's work after a restart, in runs.
    static let runs = 15

    @Test("a kept queue connection that died with its server is replaced within the same use, whatever error the work threw")
    func threadSessionReplacesDeadQueueConnectionOnce() async throws {
        try await onThread("threadSessionReplacesDeadQueueConnectionOnce") {
            let installation = try Installation(memberLimit: 20)
            let (context, _) = try installation.core()
            let connections = context.sessions.thread()
            struct Wrapped: Error { let underlying: any Error }
            var calls = 0
            // A raw RedisError and an error wrapping one: neither is a QueueError.
            let ping: (QueueConnection) throws -> RedisValue = { redis in
                calls += 1
                do { return try redis.send(["PING"], key: "kq:signal") } catch { throw Wrapped(underlying: error) }
            }
            #expect(try connections.queue(ping) == .status("PONG"))
            #expect(calls == 1)
            try installation.queueServer.restart(empty: true)
            #expect(try connections.queue(ping) == .status("PONG"), "the run after the restart succeeds")
            #expect(calls == 3, "one failure on the dead socket, one success on a new connection")
            #expect(try connections.queue { try WorkQueue().stats(on: $0) }.waiting.values.reduce(0, +) == 0)

            // The queue's Redis down: a new connection is tried once and the error thrown; nothing loops.
            try installation.queueServer.restart(empty: true)
            installation.queueServer.kill()
            calls = 0
            #expect(throws: (any Error).self) { try connections.queue(ping) }
            #expect(calls == 1, "the dead kept connection, then a refused connect")
            try installation.queueServer.restart(empty: true)
            #expect(try connections.queue(ping) == .status("PONG"))
        }
    }

    @Test("every loop that uses the queue works again on its first run after the queue's Redis restarted")
    func queueRestart() async throws {
        let installation = try await onThread { try Installation(memberLimit: 60) }
        let logs = LogRecorder()
        let registry = PrometheusCollectorRegistry()
        let runtime = try await onThread {
            try installation.worker(
                registry: registry, logs: logs,
                configure: { settings in
                    settings.watchInterval = Self.interval
                    settings.metricsInterval = Self.interval
                },
                configureWorker: { settings in
                    settings.heartbeatInterval = Self.interval
                    settings.reapInterval = Self.interval
                    settings.reapTimeout = .milliseconds(500)
                    settings.sweepInterval = Self.interval
                    settings.auditInterval = Self.interval
                    settings.activeWindow = .seconds(100 * 365 * 86_400)  // every member should have a set
                })
        }
        let context = runtime.core
        let fixture = try await onThread { try LoopFixture(installation, context) }
        let queue = try await onThread { try SharedRedis(installation.queueServer) }
        let restartQueue: @Sendable () throws -> Void = { try installation.queueServer.restart(empty: true) }

        // Heartbeat: this process's worker is alive in the queue's eyes.
        let worker = WorkerLoop.workerID(runtime, 0)
        try await Self.acrossRestart(Maintenance.heartbeat(runtime), installation, logs, restart: restartQueue) {
            try queue.send(["ZSCORE", "kq:workers", worker]).string != nil
        }
        // Reaper: a silent worker's job is put back.
        let ghostJob: @Sendable () throws -> Void = {
            let redis = try installation.queueServer.connect()
            _ = try redis.send(["ZADD", "kq:workers", "0", "ghost"])
            _ = try redis.send(["LPUSH", "kq:processing:ghost", "999001|1|1|1|0"])
        }
        try await onThread { try ghostJob() }
        try await Self.acrossRestart(Maintenance.reaper(runtime), installation, logs, restart: restartQueue, prepare: ghostJob) {
            try queue.send(["HEXISTS", "kq:waiting", "999001"]).int == 1
        }
        // Repair sweep: a member without a set is queued.
        try await Self.acrossRestart(Maintenance.repairSweep(runtime), installation, logs, restart: restartQueue) {
            try queue.send(["HGET", "kq:waiting", String(fixture.withoutSet)]).string?.hasPrefix("1:") == true
        }
        // Set audit: a set MySQL records but its shard lost is queued.
        try await Self.acrossRestart(Maintenance.setAudit(runtime), installation, logs, restart: restartQueue) {
            try queue.send(["HEXISTS", "kq:waiting", String(fixture.lostSet)]).int == 1
        }
        // Shard watcher: a shard that comes back empty after the queue restarted has its members queued.
        // The sets were written with their shard's marker: empty the shard for the first run to notice too.
        try await onThread { try fixture.emptyShard.restart(empty: true) }
        try await Self.acrossRestart(
            Maintenance.shardWatcher(runtime), installation, logs, restart: restartQueue,
            prepare: { try fixture.emptyShard.restart(empty: true) }
        ) {
            try queue.send(["HEXISTS", "kq:waiting", String(fixture.onEmptyShard)]).int == 1
        }
        // Metrics: the queue's depth is measured again.
        let depth: @Sendable () throws -> Void = {
            try WorkQueue().enqueue([999_002, 999_003, 999_004], priority: .backfill, on: QueueConnection(try installation.queueServer.connect()))
        }
        try await onThread { try depth() }
        try await Self.acrossRestart(Maintenance.metricsCollector(context, queue: runtime.queue), installation, logs, restart: restartQueue, prepare: depth) {
            registry.sample("kindred_queue_depth", "priority", "backfill") == 3
        }
    }

    @Test("a shard that comes back empty while the queue is down has its members queued once the queue is back")
    func shardEmptiedWhileQueueDown() async throws {
        let installation = try await onThread { try Installation(memberLimit: 60) }
        let logs = LogRecorder()
        let runtime = try await onThread {
            try installation.worker(logs: logs, configure: { $0.watchInterval = .milliseconds(200) })
        }
        let context = runtime.core
        let fixture = try await onThread { try LoopFixture(installation, context) }
        let queue = try await onThread { try SharedRedis(installation.queueServer) }
        let shard = try await onThread { try SharedRedis(fixture.emptyShard) }
        let watcher = Maintenance.shardWatcher(runtime)
        let group = ServiceGroup(services: [watcher], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let outcome = await Result.catching {
                try await onThread {
                    // The sets were written with their shards' markers: once a first
                    // run is over (a second one has begun), nothing was queued.
                    try poll(until: "the watcher's first run", timeout: .seconds(30)) {
                        try shard.send(["GET", "kindred:marker:sequence"]).string.flatMap { Int($0) } ?? 0 >= 2
                    }
                    #expect(try queue.send(["HLEN", "kq:waiting"]).int == 0, "no shard is taken for one that came back empty")
                    installation.queueServer.kill()
                    try fixture.emptyShard.restart(empty: true)
                    // The watcher notices (and writes the marker back) while it cannot queue anyone.
                    try poll(until: "the marker written back", timeout: .seconds(30)) {
                        try shard.send(["EXISTS", "kindred:marker"]).int == 1
                    }
                    try poll(until: "a failed run", timeout: .seconds(30)) { !logs.failures(of: "shard-watcher").isEmpty }
                    try installation.queueServer.restart(empty: true)
                    try poll(until: "the emptied shard's members queued", timeout: .seconds(30)) {
                        try queue.send(["HEXISTS", "kq:waiting", String(fixture.onEmptyShard)]).int == 1
                    }
                }
            }
            await group.triggerGracefulShutdown()
            try await tasks.next()
            try outcome.get()
        }
    }

    @Test("every loop that uses MySQL works again after MySQL restarted")
    func mysqlRestart() async throws {
        let installation = try await onThread { try Installation(dedicatedMySQL: true, memberLimit: 60) }
        let logs = LogRecorder()
        let runtime = try await onThread {
            try installation.worker(
                logs: logs,
                configure: { settings in
                    settings.refreshInterval = Self.interval
                    settings.watchInterval = Self.interval
                },
                configureWorker: { settings in
                    settings.sweepInterval = Self.interval
                    settings.auditInterval = Self.interval
                    settings.activeWindow = .seconds(100 * 365 * 86_400)
                })
        }
        let context = runtime.core
        let fixture = try await onThread { try LoopFixture(installation, context) }
        let queue = try await onThread { try SharedRedis(installation.queueServer) }
        let restartMySQL: @Sendable () throws -> Void = {
            installation.mysqlServer.kill()
            try installation.mysqlServer.restart()
        }
        let emptyQueue: @Sendable () throws -> Void = { _ = try installation.queueServer.connect().send(["FLUSHALL"]) }

        // Snapshot refresher: a member registered after the restart reaches the snapshot.
        let newcomers = Counter()
        let register: @Sendable () throws -> Void = {
            newcomers.add()
            try fixture.register(id: MemberID(900_000 + newcomers.value))
        }
        try await onThread { try register() }
        try await Self.acrossRestart(
            Maintenance.refresher(context), installation, logs, restart: restartMySQL, prepare: register,
            brokenConnectionsAllowed: true
        ) {
            context.population.read { $0.member(MemberID(900_000 + newcomers.value)) != nil }
        }
        try await Self.acrossRestart(
            Maintenance.repairSweep(runtime), installation, logs, restart: restartMySQL, prepare: emptyQueue,
            brokenConnectionsAllowed: true
        ) {
            try queue.send(["HEXISTS", "kq:waiting", String(fixture.withoutSet)]).int == 1
        }
        try await Self.acrossRestart(
            Maintenance.setAudit(runtime), installation, logs, restart: restartMySQL, prepare: emptyQueue,
            brokenConnectionsAllowed: true
        ) {
            try queue.send(["HEXISTS", "kq:waiting", String(fixture.lostSet)]).int == 1
        }
        try await onThread { try fixture.emptyShard.restart(empty: true) }  // for the first run to notice (see above)
        try await Self.acrossRestart(
            Maintenance.shardWatcher(runtime), installation, logs, restart: restartMySQL,
            prepare: {
                try emptyQueue()
                try fixture.emptyShard.restart(empty: true)
            },
            brokenConnectionsAllowed: true
        ) {
            try queue.send(["HEXISTS", "kq:waiting", String(fixture.onEmptyShard)]).int == 1
        }
        // Shard-list follower: a shard added after the restart is followed.
        let added = Latest<UInt32>()
        let shardsAdded = Counter()
        let addShard: @Sendable () throws -> Void = {
            let connection = try installation.connectMySQL()
            defer { connection.close() }
            shardsAdded.add()
            // Only a row: nothing connects to a shard before it is used.
            added.value = try ShardCatalog(connection: connection).add(address: "redis://127.0.0.1:\(10_000 + shardsAdded.value)").id
        }
        try await onThread { try addShard() }
        try await Self.acrossRestart(
            Maintenance.shardListReloader(context), installation, logs, restart: restartMySQL, prepare: addShard,
            brokenConnectionsAllowed: true
        ) {
            context.scores.manager.shards.contains { $0.id == added.value }
        }
    }

    /// Runs `loop` alone until `done` holds (its first run), restarts its
    /// server with `restart`, runs `prepare` (the work its next run must
    /// do), and waits for `done` again: at most ``runs`` intervals. Unless
    /// `brokenConnectionsAllowed`, no run of the loop may have failed on a
    /// broken connection: the run after the restart met the dead socket and
    /// must have gone on with a new connection.
    static func acrossRestart(
        _ loop: ThreadsService, _ installation: Installation, _ logs: LogRecorder,
        restart: @escaping @Sendable () throws -> Void, prepare: @escaping @Sendable () throws -> Void = {},
        brokenConnectionsAllowed: Bool = false,
        sourceLocation: SourceLocation = #_sourceLocation,
        done: @escaping @Sendable () throws -> Bool
    ) async throws {
        let group = ServiceGroup(services: [loop], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let outcome = await Result.catching {
                try await onThread("\(loop.name)-across-restart") {
                    try poll(until: "\(loop.name)'s first run", timeout: interval * runs, interval: .milliseconds(20), done)
                    try restart()
                    try prepare()
                    let restarted = ContinuousClock.now
                    try poll(until: "\(loop.name)'s work after the restart", timeout: interval * runs, interval: .milliseconds(20), done)
                    #expect(ContinuousClock.now - restarted <= interval * runs, sourceLocation: sourceLocation)
                }
            }
            await group.triggerGracefulShutdown()
            try await tasks.next()
            try outcome.get()
        }
        let broken = logs.failures(of: loop.name).filter { $0.contains("connectionBroken") || $0.contains("timedOut") }
        if !brokenConnectionsAllowed {
            #expect(broken.isEmpty, "\(loop.name) failed a run on a dead connection: \(broken)", sourceLocation: sourceLocation)
        }
    }
}

/// What the loops act on: some members with sets (one of them with the set
/// lost from its shard), one member without a set, a shard to empty and a
/// member whose set it holds.
struct LoopFixture: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; the servers are Sendable.
    let installation: Installation
    let context: GenerationCore
    /// A member whose set MySQL records and whose shard no longer has it.
    let lostSet: MemberID
    /// A member with no set.
    let withoutSet: MemberID
    /// A shard holding `onEmptyShard`'s set (and not `lostSet`'s).
    let emptyShard: RedisServer
    let onEmptyShard: MemberID

    init(_ installation: Installation, _ context: GenerationCore) throws {
        self.installation = installation
        self.context = context
        let generator = Generator(core: context)
        let generated = installation.members.prefix(15).map(\.id)
        for member in generated { _ = try generator.regenerate(member) }
        withoutSet = try require(installation.members.last?.id)
        var shardOf: [MemberID: UInt32] = [:]
        for member in generated { shardOf[member] = try require(try context.directory.shard(of: member, in: context.sessions.storeSession())) }
        lostSet = generated[0]
        let lostShard = try require(shardOf[lostSet])
        _ = try context.scores.removeSet(lostSet, shard: lostShard)
        let (shardID, member) = try require(
            generated.dropFirst().first { shardOf[$0] != lostShard }.map { (shardOf[$0]!, $0) }, "a set on another shard")
        onEmptyShard = member
        emptyShard = installation.shards[try require(installation.shardIDs.firstIndex(of: shardID))]
    }

    /// Registers a new member (a copy of the first fixture member under `id`).
    func register(id: MemberID) throws {
        var member = installation.members[0]
        member.id = id
        let connection = try installation.connectMySQL()
        defer { connection.close() }
        _ = try MemberRepository(connection: connection, survey: context.survey).upsert([member])
    }
}

extension Result where Failure == any Error {
    /// The outcome of `body`, thrown or not.
    static func catching(_ body: () async throws -> Success) async -> Self {
        do { return .success(try await body()) } catch { return .failure(error) }
    }
}
