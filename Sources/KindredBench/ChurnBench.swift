import ArgumentParser
import Foundation
import KindredSupport
import MariaDBClient
@_spi(Testing) import MemberStore
import RedisClient
import Scoring
import Synthetic
import WorkQueue

/// A live site's stream of changes against a running `kindred worker`, with
/// every set kept exact: this process plays the web site. It writes each
/// event to MySQL and enqueues the member (as `PUT` / `DELETE` do), at a
/// steady rate, and measures event-to-consistent: from the event to the
/// moment the worker settled its publication (the member's own set written
/// and every other set that ranks them corrected), from the worker's own
/// records. `scripts/bench churn` sets it all up.
///
/// Mixes: `registrations` (new members only), `mixed` (half registrations,
/// 40% answer changes, 5% blocks, 5% deletions). Within a run each member
/// has at most one event (the worker keeps only a member's latest
/// settlement, which would otherwise be taken for every event's).
struct ChurnBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "churn",
        abstract: "Events per minute and event-to-consistent latency against a running worker daemon (KINDRED_MYSQL, KINDRED_QUEUE)."
    )

    @Option(help: "Events per minute to offer, comma-separated (one run each).")
    var rates: String = "1000,2000,3000"

    @Option(help: "Seconds each rate is offered.")
    var seconds: Int = 60

    @Option(help: "registrations or mixed.")
    var mix: String = "registrations"

    @Option(name: .customLong("first-id"), help: "Ids of new members start here (above the population's).")
    var firstID: UInt32 = 60_000_000

    @Option(help: "Seed of the synthetic newcomers (the population's survey must match: Q = 100, seed 1).")
    var seed: UInt64 = 1

    @Option(help: "Redis shards to count commands on (comma-separated ports on 127.0.0.1).")
    var shards: String = "7101,7102,7103"

    func validate() throws {
        guard ["registrations", "mixed"].contains(mix) else { throw ValidationError("--mix is registrations or mixed") }
    }

    enum Event: String, CaseIterable {
        case register, answers, block, delete
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let mysqlURL = environment["KINDRED_MYSQL"], let queueURL = environment["KINDRED_QUEUE"] else {
            throw ValidationError("set KINDRED_MYSQL and KINDRED_QUEUE (scripts/bench churn does)")
        }
        var mysql = try MariaDBConnection.Configuration(url: mysqlURL)
        mysql.readTimeout = .seconds(600)
        let connection = try MariaDBConnection(configuration: mysql)
        defer { connection.close() }
        RedisClient.ignoreSIGPIPE()
        let redis = try QueueConnection(address: try QueueAddress(queueURL), readTimeout: .seconds(30))
        let shardConnections = try shards.split(separator: ",").compactMap { Int($0) }.map {
            try RedisConnection(configuration: RedisURL(host: "127.0.0.1", port: $0).configuration(readTimeout: .seconds(30)))
        }
        let queue = WorkQueue()
        let repository = try MemberRepository.open(connection)
        let sets = try connection.query("SELECT COUNT(*), COALESCE(SUM(match_count = 5000), 0) FROM generations").first
        print("population: \(try repository.counts().live) members, \(sets?.int(0) ?? 0) sets (\(sets?.int(1) ?? 0) full at N = 5000)")
        let synthetic = SyntheticPopulation(members: 100_000_000, seed: seed, asOf: Int64(Date().timeIntervalSince1970))
        guard synthetic.survey == repository.survey else {
            throw ValidationError("the stored survey differs from the synthetic one (synthesize the population with --seed \(seed))")
        }
        var existing = try repository.memberIDs(.all, after: 0, limit: 10_000_000)
        var random = SystemRandomNumberGenerator()
        var nextIndex = 60_000_000 + Int(firstID % 1_000_000) * 100
        var nextID = firstID
        print("mix: \(mix)")
        print("rate/min offered  completed/min  p50 ms  p90 ms  p99 ms  max ms  redis calls/event (script calls/event)  (event to consistent, \(seconds) s each)")
        for rate in rates.split(separator: ",").compactMap({ Int($0) }) {
            let total = rate * seconds / 60
            let interval = 60.0 / Double(rate)
            let callsBefore = try commandCalls(shardConnections)
            var events: [(member: MemberID, event: Event, at: Int64)] = []
            // One event per member within a run: the worker records only a
            // member's latest settlement, so a second event on the same
            // member would be measured as the first's latency too (a
            // newcomer changed 40 s after registering read as a 40 s
            // registration). Measured before this: the mixed stream's
            // maximum, 46 s, with p99 at 0.3 s.
            var touched = Set<MemberID>()
            /// The index in `existing` of a random member without an event yet.
            func untouched(_ random: inout SystemRandomNumberGenerator) -> Int? {
                for _ in 0..<1000 {
                    let index = Int(random.next() % UInt64(existing.count))
                    if !touched.contains(existing[index]) { return index }
                }
                return nil
            }
            let start = Date()
            for i in 0..<total {
                let due = start.addingTimeInterval(Double(i) * interval)
                let wait = due.timeIntervalSinceNow
                if wait > 0 { sleepThread(.seconds(wait)) }
                let event = pick(&random)
                let member: MemberID
                switch event {
                case .register:
                    var newcomer = synthetic.member(nextIndex)
                    nextIndex += 1
                    newcomer.id = nextID
                    nextID += 1
                    newcomer.lastActive = Int64(Date().timeIntervalSince1970)
                    try repository.upsert([newcomer])
                    existing.append(newcomer.id)
                    member = newcomer.id
                case .answers, .block:
                    guard let index = untouched(&random) else { continue }
                    member = existing[index]
                    guard var record = try repository.member(member) else { continue }
                    if event == .answers {
                        var fresh = synthetic.member(nextIndex)
                        nextIndex += 1
                        fresh.id = member
                        record.answers = fresh.answers
                    } else {
                        record.blocked.append(existing[Int(random.next() % UInt64(existing.count))])
                        record.blocked.removeAll { $0 == member }
                    }
                    record.lastActive = Int64(Date().timeIntervalSince1970)
                    try repository.upsert([record])
                case .delete:
                    guard let index = untouched(&random) else { continue }
                    member = existing[index]
                    existing.swapAt(index, existing.count - 1)
                    existing.removeLast()
                    guard try repository.delete(member) else { continue }
                }
                touched.insert(member)
                events.append((member, event, Int64(Date().timeIntervalSince1970 * 1000)))
                try queue.enqueue([member], priority: .interactive, on: redis)
            }
            let offeredFor = Date().timeIntervalSince(start)
            try waitIdle(queue, redis)
            let calls = try commandCalls(shardConnections).subtracting(callsBefore)
            // When each event's publication settled, from the worker's own record (server clock, same machine).
            var settledAt: [MemberID: Int64] = [:]
            let ids = Array(Set(events.map(\.member)))
            for chunk in stride(from: 0, to: ids.count, by: 500) {
                let part = ids[chunk..<min(ids.count, chunk + 500)]
                let sql = "SELECT member_id, MAX(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', settled_at)) DIV 1000 FROM published "
                    + "WHERE settled_at IS NOT NULL AND member_id IN (" + Array(repeating: "?", count: part.count).joined(separator: ",")
                    + ") GROUP BY member_id"
                for row in try connection.query(sql, part.map { SQLValue.uint(UInt64($0)) }) {
                    settledAt[MemberID(row.uint(0)!)] = row.int(1)!
                }
            }
            let latencies = events.compactMap { event in settledAt[event.member].map { Double(max(0, $0 - event.at)) } }.sorted()
            guard !latencies.isEmpty, let first = events.first?.at, let last = settledAt.values.max() else {
                print("\(rate): nothing completed")
                continue
            }
            let completedPerMinute = Double(latencies.count) / (Double(last - first) / 60_000)
            func quantile(_ q: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))] }
            let perEvent = Double(calls.total) / Double(max(1, events.count))
            let placements = Double(calls.evalsha) / Double(max(1, events.count))
            print(String(
                format: "%16d  %13.0f  %6.0f  %6.0f  %6.0f  %6.0f  %8.0f (%.0f)   (%d of %d events; offered over %.0f s)",
                rate, completedPerMinute, quantile(0.5), quantile(0.9), quantile(0.99), latencies.last!, perEvent, placements,
                latencies.count, events.count, offeredFor))
            // Server time in the placement scripts (a command a script calls
            // counts in its own line too, and in the script's time), and the
            // trims: each reads the set's B buckets with HGETALL.
            print(String(
                format: "  shards: %.1f ms of script time per event, %.0f HGETALL calls per event (a trim reads every bucket)",
                Double(calls.evalshaMicroseconds) / 1000 / Double(max(1, events.count)),
                Double(calls.hgetall) / Double(max(1, events.count))))
            let kinds = Dictionary(grouping: events, by: \.event).mapValues(\.count)
            print("  events: " + Event.allCases.map { "\($0.rawValue) \(kinds[$0] ?? 0)" }.joined(separator: ", "))
        }
    }

    private func pick(_ random: inout SystemRandomNumberGenerator) -> Event {
        guard mix == "mixed" else { return .register }
        switch random.next() % 100 {
        case 0..<50: return .register
        case 50..<90: return .answers
        case 90..<95: return .block
        default: return .delete
        }
    }

    struct Calls {
        var total = 0
        var evalsha = 0
        var evalshaMicroseconds = 0
        var hgetall = 0
        func subtracting(_ other: Calls) -> Calls {
            Calls(
                total: total - other.total, evalsha: evalsha - other.evalsha,
                evalshaMicroseconds: evalshaMicroseconds - other.evalshaMicroseconds, hgetall: hgetall - other.hgetall)
        }
    }

    /// Commands the shards executed so far (INFO commandstats), all and EVALSHA.
    private func commandCalls(_ shards: [RedisConnection]) throws -> Calls {
        var calls = Calls()
        for shard in shards {
            let info = try shard.sendChecked(["INFO", "commandstats"]).string ?? ""
            for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
                guard let range = line.range(of: "calls="), let end = line[range.upperBound...].firstIndex(of: ",") else { continue }
                let count = Int(line[range.upperBound..<end]) ?? 0
                if line.hasPrefix("cmdstat_info:") { continue }
                calls.total += count
                if line.hasPrefix("cmdstat_evalsha:") {
                    calls.evalsha += count
                    if let usec = line.range(of: "usec="), let stop = line[usec.upperBound...].firstIndex(of: ",") {
                        calls.evalshaMicroseconds += Int(line[usec.upperBound..<stop]) ?? 0
                    }
                }
                if line.hasPrefix("cmdstat_hgetall:") { calls.hgetall += count }
            }
        }
        return calls
    }

    private func waitIdle(_ queue: WorkQueue, _ redis: QueueConnection) throws {
        while true {
            let stats = try queue.stats(on: redis)
            if stats.waiting.values.reduce(0, +) == 0 && stats.delayed == 0 && stats.processing == 0 { return }
            sleepThread(.milliseconds(50))
        }
    }
}
