import ArgumentParser
import Foundation
import KindredSupport
import MariaDBClient
@_spi(Testing) import MemberStore
import RedisClient
import Scoring
import Synthetic
import WorkQueue

/// Sustained registrations against a running `kindred worker`: this process
/// plays the web site. It writes new members to MySQL and enqueues them at a
/// steady rate, and measures, from the generation timestamps the worker
/// records, how long each took from enqueue to stored, and how many members
/// per minute the worker completed. `scripts/bench worker` sets it all up.
struct RegistrationsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registrations",
        abstract: "Registrations per minute and enqueue-to-stored latency against a running worker daemon (KINDRED_MYSQL, KINDRED_QUEUE)."
    )

    @Option(help: "Registrations per minute to offer, comma-separated (one run each).")
    var rates: String = "1000,2000,4000"

    @Option(help: "Seconds each rate is offered.")
    var seconds: Int = 60

    @Option(name: .customLong("first-id"), help: "Ids of the new members start here (above the population's).")
    var firstID: UInt32 = 50_000_000

    @Option(help: "Seed of the synthetic newcomers (the population's survey must match: Q = 100, seed 1).")
    var seed: UInt64 = 1

    @Option(name: .customLong("prepare-live-days"), help: "Before measuring, give a set to every member active within this many days (queued at backfill priority; 0: skip).")
    var prepareLiveDays: Int = 0

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let mysqlURL = environment["KINDRED_MYSQL"], let queueURL = environment["KINDRED_QUEUE"] else {
            throw ValidationError("set KINDRED_MYSQL and KINDRED_QUEUE (scripts/bench worker does)")
        }
        var mysql = try MariaDBConnection.Configuration(url: mysqlURL)
        mysql.readTimeout = .seconds(600)
        let connection = try MariaDBConnection(configuration: mysql)
        defer { connection.close() }
        RedisClient.ignoreSIGPIPE()
        let redis = try QueueConnection(address: try QueueAddress(queueURL), readTimeout: .seconds(30))
        let queue = WorkQueue()
        let repository = try MemberRepository.open(connection)
        let counts = try repository.counts()
        print("population: \(counts.live) members in MySQL")

        if prepareLiveDays > 0 {
            let now = Int64(Date().timeIntervalSince1970)
            var after: MemberID = 0
            var live: [MemberID] = []
            while true {
                let page = try repository.memberIDs(.activeWithin(seconds: Int64(prepareLiveDays) * 86_400, now: SyntheticPopulation.defaultAsOf), after: after, limit: 10_000)
                guard let last = page.last else { break }
                live += page
                after = last
            }
            let start = ContinuousClock.now
            try queue.enqueue(live, priority: .backfill, on: redis)
            try waitIdle(queue, redis)
            print("prepared: \(live.count) members active within \(prepareLiveDays) days now have sets (\(ContinuousClock.now - start)); now \(now)")
        }

        // Newcomers: members of the same synthetic model (same seed, hence the
        // same survey) drawn far beyond the population's indices.
        let synthetic = SyntheticPopulation(members: 100_000_000, seed: seed, asOf: Int64(Date().timeIntervalSince1970))
        guard synthetic.survey == repository.survey else {
            throw ValidationError("the stored survey differs from the synthetic one (synthesize the population with --seed \(seed))")
        }
        var nextIndex = 50_000_000
        print("rate/min offered  completed/min  p50 ms  p90 ms  p99 ms  max ms  (enqueue to stored, \(seconds) s each)")
        for rate in rates.split(separator: ",").compactMap({ Int($0) }) {
            let total = rate * seconds / 60
            let interval = 60.0 / Double(rate)
            var enqueuedAt: [MemberID: Int64] = [:]
            let start = Date()
            for i in 0..<total {
                let due = start.addingTimeInterval(Double(i) * interval)
                let wait = due.timeIntervalSinceNow
                if wait > 0 { sleepThread(.seconds(wait)) }
                var member = synthetic.member(nextIndex)
                nextIndex += 1
                member.id = firstID + MemberID(nextIndex - 50_000_000)
                member.lastActive = Int64(Date().timeIntervalSince1970)
                try repository.upsert([member])
                enqueuedAt[member.id] = Int64(Date().timeIntervalSince1970 * 1000)
                try queue.enqueue([member.id], priority: .interactive, on: redis)
            }
            let offeredFor = Date().timeIntervalSince(start)
            try waitIdle(queue, redis)
            // When each newcomer's set was stored, from the worker's own record.
            var storedAt: [MemberID: Int64] = [:]
            let ids = Array(enqueuedAt.keys)
            for chunk in stride(from: 0, to: ids.count, by: 500) {
                let part = ids[chunk..<min(ids.count, chunk + 500)]
                let sql = "SELECT member_id, generated_at FROM generations WHERE member_id IN ("
                    + Array(repeating: "?", count: part.count).joined(separator: ",") + ")"
                for row in try connection.query(sql, part.map { SQLValue.uint(UInt64($0)) }) {
                    storedAt[MemberID(row.uint(0)!)] = row.int(1)!
                }
            }
            let latencies = enqueuedAt.compactMap { id, at in storedAt[id].map { Double($0 - at) } }.sorted()
            guard !latencies.isEmpty, let firstEnqueue = enqueuedAt.values.min(), let lastStored = storedAt.values.max() else {
                print("\(rate): nothing completed")
                continue
            }
            let completedPerMinute = Double(latencies.count) / (Double(lastStored - firstEnqueue) / 60_000)
            func quantile(_ q: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))] }
            print(String(
                format: "%16d  %13.0f  %6.0f  %6.0f  %6.0f  %6.0f   (%d of %d stored; offered over %.0f s)",
                rate, completedPerMinute, quantile(0.5), quantile(0.9), quantile(0.99), latencies.last!, latencies.count, total,
                offeredFor))
        }
    }

    private func waitIdle(_ queue: WorkQueue, _ redis: QueueConnection) throws {
        while true {
            let stats = try queue.stats(on: redis)
            if stats.waiting.values.reduce(0, +) == 0 && stats.delayed == 0 && stats.processing == 0 { return }
            sleepThread(.milliseconds(50))
        }
    }
}
