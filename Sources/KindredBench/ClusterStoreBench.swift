import ArgumentParser
import Dispatch
import Foundation
import RedisClient
import ScoreStore
import Scoring
import Synchronization

/// Whole-set writes into a running Redis Cluster (one cluster shard),
/// against `redis-cli --pipe` sending the same HSETs straight to each
/// master (one process per master, all at once), and sorted reads. It
/// starts no server:
///
///     scripts/bench cluster
///     kindred-bench cluster-store --seed redis://127.0.0.1:7451
///
/// Every round starts from `FLUSHALL SYNC` on every master: the cluster
/// must hold nothing you want to keep.
struct ClusterStoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster-store",
        abstract: "Whole-set writes into a Redis Cluster (vs redis-cli --pipe into its masters) and sorted reads. FLUSHES the cluster."
    )

    @Option(help: "A node of the cluster: redis://HOST:PORT.")
    var seed: String

    @Option(help: "Members whose sets are written per round.")
    var members: Int = 300

    @Option(name: .customLong("top-n"), help: "N: matches per set.")
    var topN: Int = 5000

    @Option(help: "Concurrent writers (a worker daemon runs one job per worker thread).")
    var writers: Int = 3

    @Option(help: "Sorted reads timed (the median and p90 are reported).")
    var reads: Int = 300

    @Option(help: "Write rounds (peer, then Kindred, each from empty); the best of each is reported.")
    var rounds: Int = 3

    @Option(name: .customLong("redis-cli"), help: "The redis-cli binary for the peer.")
    var redisCLI: String = "/usr/bin/redis-cli"

    func run() throws {
        RedisClient.ignoreSIGPIPE()
        guard seed.lowercased().hasPrefix("redis://") else { throw ValidationError("--seed is redis://HOST:PORT") }
        let endpoint = try ShardEndpoint(id: 1, url: "redis+cluster://" + seed.dropFirst("redis://".count))
        let node = RedisConnection.Configuration(host: endpoint.host, port: endpoint.port, readTimeout: .seconds(60))
        let cluster = ClusterConnection(configuration: .init(seeds: [ClusterNode(host: endpoint.host, port: endpoint.port)], node: node))
        try cluster.refreshSlotMap()
        guard let map = cluster.slotMap else { throw ValidationError("no slot map") }
        let masters = map.masterNodes
        let admins = try masters.map { master in
            try RedisConnection(configuration: .init(host: master.host, port: master.port, readTimeout: .seconds(60)))
        }
        defer { for admin in admins { admin.close() } }
        let version = ScoreStoreBench.info(admins[0], "server", "redis_version") ?? "?"
        print("cluster-store benchmark: \(endpoint.url), \(masters.count) masters (redis \(version)); \(members) members x N = \(topN), \(writers) writers")

        let configuration = ScoreStore.Configuration()
        let layout = configuration.layout
        let manager = ShardConnectionManager(shards: [endpoint])
        defer { manager.close() }
        let store = ScoreStore(manager: manager, configuration: configuration)
        let sets = (0..<members).map { ScoreStoreBench.matches(for: MemberID(1 + $0), count: topN) }
        let fields = Double(members * topN)

        // The peer's input: each member's HSETs (to the live keys), in the file of the master serving its slot.
        var resp = [[UInt8]](repeating: [], count: masters.count)
        for (index, matches) in sets.enumerated() {
            let member = MemberID(1 + index)
            guard let master = map.master(for: ScoreLayout.slot(of: member)), let m = masters.firstIndex(of: master) else {
                throw ValidationError("no master serves member \(member)'s slot")
            }
            var perBucket = [[Match]](repeating: [], count: layout.buckets)
            for match in matches { perBucket[layout.bucket(of: match.id)].append(match) }
            for bucket in 0..<layout.buckets where !perBucket[bucket].isEmpty {
                var command = RedisCommand("HSET", reservingCapacity: 16 * perBucket[bucket].count)
                command.append(layout.liveKey(member, bucket: bucket))
                for match in perBucket[bucket] {
                    command.append(Int(match.id))
                    command.append(fixedPoint: Int(match.tenths), fractionDigits: 1)
                }
                resp[m] += command.encodedBytes
            }
        }
        let files = try resp.enumerated().map { index, bytes in
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("kindred-bench-cluster-\(getpid())-\(index).resp")
            try Data(bytes).write(to: file)
            return file
        }
        defer { for file in files { try? FileManager.default.removeItem(at: file) } }

        func flush() throws {
            for admin in admins {
                _ = try admin.sendChecked(["FLUSHALL", "SYNC"])
                _ = try admin.sendChecked(["CONFIG", "RESETSTAT"])
            }
        }
        func serverUsec(_ commands: [String]) -> Double { admins.reduce(0) { $0 + ScoreStoreBench.totalUsec($1, commands) } }
        func write(writers: Int) throws -> Double {
            let failures = ErrorBox()
            let start = ContinuousClock.now
            DispatchQueue.concurrentPerform(iterations: writers) { writer in
                for index in stride(from: writer, to: sets.count, by: writers) {
                    do {
                        try store.writeSet(MemberID(1 + index), shard: 1, matches: sets[index], answersVersion: "bench", limit: topN, complete: false)
                    } catch {
                        failures.record("\(error)")
                    }
                }
            }
            let seconds = ScoreStoreBench.seconds(ContinuousClock.now - start)
            if let failure = failures.first { throw ValidationError("a write failed: \(failure)") }
            return seconds
        }

        var peerBest = Double.infinity, writeBest = Double.infinity, oneWriterBest = Double.infinity
        var peerServer = Double.infinity, writeServer = Double.infinity
        for _ in 0..<rounds {
            // The peer: one redis-cli --pipe per master, all at once.
            try flush()
            let peerStart = ContinuousClock.now
            var processes: [Process] = []
            for (master, file) in zip(masters, files) {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: redisCLI)
                process.arguments = ["-h", master.host, "-p", String(master.port), "--pipe"]
                process.standardInput = try FileHandle(forReadingFrom: file)
                process.standardOutput = FileHandle.nullDevice
                try process.run()
                processes.append(process)
            }
            for process in processes {
                process.waitUntilExit()
                guard process.terminationStatus == 0 else { throw ValidationError("redis-cli --pipe failed (\(process.terminationStatus))") }
            }
            peerBest = min(peerBest, ScoreStoreBench.seconds(ContinuousClock.now - peerStart))
            peerServer = min(peerServer, serverUsec(["hset"]) / fields)

            // Kindred's whole-set writes (temporary keys, TTL, atomic replace), from empty.
            try flush()
            writeBest = min(writeBest, try write(writers: writers))
            writeServer = min(writeServer, serverUsec(["hset", "pexpire", "evalsha", "exists"]) / fields)
            try flush()
            oneWriterBest = min(oneWriterBest, try write(writers: 1))
        }

        // Sorted reads of whole sets, members on every master.
        var readTimes: [Double] = []
        for index in 0..<reads {
            let start = ContinuousClock.now
            let set = try store.readSet(MemberID(1 + index % sets.count), shard: 1)
            readTimes.append(ScoreStoreBench.seconds(ContinuousClock.now - start) * 1000)
            guard set?.matches.count == topN else { throw ValidationError("a read came back with \(set?.matches.count ?? -1) entries") }
        }
        readTimes.sort()
        let perMaster = masters.map { master in sets.indices.filter { map.master(for: ScoreLayout.slot(of: MemberID(1 + $0))) == master }.count }

        print("| writers | write fields/s | redis-cli --pipe into each master fields/s | ratio | server us/field (Kindred, peer) | one writer fields/s | sorted read of \(topN), median (p90) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        print(String(
            format: "| %d | %.0fk | %.0fk | %.0f%% | %.2f, %.2f | %.0fk | %.2f ms (%.2f) |",
            writers, fields / writeBest / 1e3, fields / peerBest / 1e3, 100 * peerBest / writeBest, writeServer, peerServer,
            fields / oneWriterBest / 1e3, readTimes[readTimes.count / 2], readTimes[readTimes.count * 9 / 10]))
        print("sets per master: \(perMaster.map(String.init).joined(separator: ", "))")
    }
}

/// The first error of concurrent writers.
private final class ErrorBox: Sendable {
    private let errors = Mutex<[String]>([])
    func record(_ error: String) { errors.withLock { $0.append(error) } }
    var first: String? { errors.withLock { $0.first } }
}
