import Foundation
import RedisClient
@testable import ScoreStore
import Scoring
import TestSupport

/// A clock the tests move by hand: the breaker, backoff and idle timeout
/// see only what it says.
final class FakeClock: @unchecked Sendable {
    // @unchecked Sendable: `offset` is only touched under `lock`.
    private let lock = NSLock()
    private let base = ContinuousClock.now
    private var offset: Duration = .zero

    var now: ContinuousClock.Instant { lock.withLock { base + offset } }

    func advance(by duration: Duration) {
        lock.withLock { offset += duration }
    }

    var function: @Sendable () -> ContinuousClock.Instant { { [self] in now } }
}

/// Three real shards (ids 1, 2, 3), a manager and a store over them.
final class Shards: @unchecked Sendable {
    // @unchecked Sendable: every stored property is a `let` of a thread-safe type.
    let servers: [RedisServer]
    let clock = FakeClock()
    let manager: ShardConnectionManager
    let store: ScoreStore

    init(
        count: Int = 3,
        buckets: Int = 64,
        configure: (inout ShardConnectionManager.Configuration) -> Void = { _ in },
        configureStore: (inout ScoreStore.Configuration) -> Void = { _ in }
    ) throws {
        var servers: [RedisServer] = []
        for _ in 0..<count { servers.append(try RedisServer()) }
        self.servers = servers
        var configuration = ShardConnectionManager.Configuration()
        configuration.readTimeout = .seconds(10)
        configuration.backoff = ReconnectBackoff.Configuration(baseDelay: .milliseconds(1), maxDelay: .milliseconds(4))
        configure(&configuration)
        manager = ShardConnectionManager(
            shards: servers.enumerated().map { ShardEndpoint(id: ShardID($0.offset + 1), host: $0.element.host, port: Int($0.element.port)) },
            configuration: configuration,
            clock: clock.function,
            jitter: { 0.5 })
        var storeConfiguration = ScoreStore.Configuration()
        storeConfiguration.layout = ScoreLayout(buckets: buckets)
        configureStore(&storeConfiguration)
        store = ScoreStore(manager: manager, configuration: storeConfiguration)
    }

    /// The server of shard `id`.
    func server(_ id: ShardID) -> RedisServer { servers[Int(id) - 1] }

    /// A plain connection of the test's own (not counted as the store's).
    func raw(_ id: ShardID) throws -> RedisConnection { try server(id).connect() }

    /// Members' shards in the tests: member % 3 + 1.
    static func shardOf(_ member: MemberID) -> ShardID? { ShardID(member % 3 + 1) }
}

extension RedisConnection {
    /// `CLIENT LIST` lines whose `name=` is `name`.
    func clients(named name: String) throws -> [String] {
        let list = try sendChecked(["CLIENT", "LIST"]).string ?? ""
        return list.split(separator: "\n").map(String.init).filter { $0.contains(" name=\(name) ") }
    }

    /// `calls` of one command in `INFO commandstats` (0 when never called).
    func commandCalls(_ command: String) throws -> Int {
        let info = try sendChecked(["INFO", "commandstats"]).string ?? ""
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_\(command):calls=") {
            let rest = line.dropFirst("cmdstat_\(command):calls=".count)
            return Int(rest.prefix { $0.isNumber }) ?? 0
        }
        return 0
    }

    /// Keys matching `pattern` (SCAN, complete).
    func keys(matching pattern: String) throws -> [String] {
        var cursor = "0"
        var keys: [String] = []
        repeat {
            let reply = try sendChecked(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"])
            guard let parts = reply.array, parts.count == 2 else { break }
            cursor = parts[0].string ?? "0"
            keys += (parts[1].array ?? []).compactMap(\.string)
        } while cursor != "0"
        return keys.sorted()
    }
}

/// A ranked set of `count` matches for `member`: ids from `firstID` upward
/// (skipping `member`), scores from a simple deterministic spread.
func rankedMatches(for member: MemberID, count: Int, firstID: MemberID = 1000, seed: UInt32 = 1) -> [Match] {
    var matches: [Match] = []
    var id = firstID
    while matches.count < count {
        if id != member {
            let tenths = Int((id &* 2_654_435_761 &+ seed &* 40503) % 101)
            matches.append(Match(id: id, tenths: tenths))
        }
        id += 1
    }
    return matches.sorted(by: Match.ranksBefore)
}

/// Runs a blocking closure on a thread of its own (not Swift's cooperative
/// pool), then collects the result with a bounded wait.
final class BackgroundThread<Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `value` is written once under `lock` before
    // `finished` is signalled and read under `lock` after the wait.
    private let lock = NSLock()
    private var value: Value?
    private let finished = DispatchSemaphore(value: 0)
    private let name: String

    init(_ name: String, _ body: @escaping @Sendable () -> Value) {
        self.name = name
        let thread = Thread { [self] in
            let result = body()
            lock.withLock { value = result }
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    func result(timeout: Duration = .seconds(60)) throws -> Value {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        guard finished.wait(timeout: .now() + seconds) == .success else {
            throw TestSupportError("\(name) did not finish within \(timeout)")
        }
        return lock.withLock { value! }
    }
}

extension ScoreStore {
    /// A whole-set write as most tests make it: a set of fewer than `limit`
    /// entries holds every candidate (no floor); one of `limit` or more has
    /// its last entry as its floor.
    @discardableResult
    func writeSet(
        _ member: MemberID, shard: ShardID, matches: [Match], answersVersion: String, limit: Int, generatedAt: Int64 = ScoreStore.unixTime()
    ) throws(ScoreStoreError) -> WriteResult {
        try writeSet(
            member, shard: shard, matches: matches, answersVersion: answersVersion, limit: limit, complete: matches.count < limit, generatedAt: generatedAt)
    }

    /// One placement of `member` into `target`'s set.
    func place(_ member: MemberID, into target: MemberID, tenths: Int?, answersVersion: String = "s", limit: Int, shard: ShardID) -> PlacementResults {
        place([Placement(target: target, member: member, tenths: tenths, answersVersion: answersVersion)], limit: limit) { _ in shard }
    }
}
