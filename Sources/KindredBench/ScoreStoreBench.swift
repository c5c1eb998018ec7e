import ArgumentParser
import Foundation
import KindredSupport
import RedisClient
import ScoreStore
import Scoring

/// Measures the score store against a running shard (it starts no server):
/// whole-set writes against `redis-cli --pipe` writing the same HSETs,
/// bytes per stored score, sorted reads, offers, for each bucket count B.
///
///     redis-server --bind 127.0.0.1 --port 7400 --save '' --appendonly no &
///     kindred-bench score-store --shard redis://127.0.0.1:7400
///
/// Every phase starts from `FLUSHALL SYNC`: the shard must hold nothing
/// you want to keep.
struct ScoreStoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score-store",
        abstract: "Whole-set writes (vs redis-cli --pipe), bytes per score, sorted reads and offers per bucket count. FLUSHES the shard."
    )

    @Option(help: "The shard to use (it is flushed): redis://HOST:PORT.")
    var shard: String

    @Option(help: "Bucket counts to compare, comma-separated.")
    var buckets: String = "1,16,32,64,128"

    @Option(help: "Members whose sets are written per bucket count.")
    var members: Int = 200

    @Option(name: .customLong("top-n"), help: "N: matches per set.")
    var topN: Int = 5000

    @Option(help: "Sorted reads timed per bucket count (the median is reported).")
    var reads: Int = 200

    @Option(help: "Offers sent per phase.")
    var offers: Int = 100_000

    @Option(help: "Write rounds (peer, then Kindred, each from empty); the best of each is reported.")
    var rounds: Int = 3

    @Option(help: "Pairs (writes) or commands (offers) per pipelined batch.")
    var batch: Int = 1000

    @Option(name: .customLong("slack-divisor"), help: "Slack = max(16, N / this).")
    var slackDivisor: Int = 50

    @Option(name: .customLong("redis-cli"), help: "The redis-cli binary for the peer.")
    var redisCLI: String = "/usr/bin/redis-cli"

    func run() throws {
        RedisClient.ignoreSIGPIPE()
        let endpoint = try ShardEndpoint(id: 1, url: shard)
        let admin = try RedisConnection(configuration: .init(host: endpoint.host, port: endpoint.port, readTimeout: .seconds(60)))
        let version = Self.info(admin, "server", "redis_version") ?? "?"
        let listpack = (try? admin.sendChecked(["CONFIG", "GET", "hash-max-listpack-entries"]).array?.last?.string) ?? "?"
        print("score-store benchmark: \(endpoint.url) (redis \(version), hash-max-listpack-entries \(listpack)); \(members) members x N = \(topN), batch \(batch)")
        let sets = (0..<members).map { Self.matches(for: MemberID(1 + $0), count: topN) }
        print("| B | encoding | bytes/score (used_memory) | MEMORY USAGE/score | write fields/s | redis-cli --pipe fields/s | ratio | server us/field (Kindred, peer) | sorted read ms (median, p90; server) | entering placements/s | us/placement (server) | placements into full sets/s | us/placement (server) | trimmed entries | one trim ms (server, median) |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for b in buckets.split(separator: ",").compactMap({ Int($0) }) {
            try bench(buckets: b, endpoint: endpoint, admin: admin, sets: sets)
        }
    }

    private func bench(buckets b: Int, endpoint: ShardEndpoint, admin: RedisConnection, sets: [[Match]]) throws {
        let layout = ScoreLayout(buckets: b)
        var storeConfiguration = ScoreStore.Configuration()
        storeConfiguration.layout = layout
        storeConfiguration.batchSize = batch
        storeConfiguration.slackDivisor = slackDivisor
        let manager = ShardConnectionManager(shards: [endpoint])
        defer { manager.close() }
        let store = ScoreStore(manager: manager, configuration: storeConfiguration)
        let fields = Double(sets.count * topN)

        // 1. The peer: the same HSETs (to the live keys), as RESP, through redis-cli --pipe.
        _ = try admin.sendChecked(["FLUSHALL", "SYNC"])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kindred-bench-pipe-\(getpid())-\(b).resp")
        defer { try? FileManager.default.removeItem(at: file) }
        var resp: [UInt8] = []
        resp.reserveCapacity(sets.count * topN * 20)
        for (index, matches) in sets.enumerated() {
            let member = MemberID(1 + index)
            var perBucket = [[Match]](repeating: [], count: b)
            for match in matches { perBucket[layout.bucket(of: match.id)].append(match) }
            for bucket in 0..<b where !perBucket[bucket].isEmpty {
                for chunk in stride(from: 0, to: perBucket[bucket].count, by: batch) {
                    var command = RedisCommand("HSET", reservingCapacity: 16 * batch)
                    command.append(layout.liveKey(member, bucket: bucket))
                    for match in perBucket[bucket][chunk..<min(chunk + batch, perBucket[bucket].count)] {
                        command.append(Int(match.id))
                        command.append(fixedPoint: Int(match.tenths), fractionDigits: 1)
                    }
                    resp += command.encodedBytes
                }
            }
        }
        try Data(resp).write(to: file)

        // 2. Rounds of (peer, Kindred), each from an empty shard: the best
        //    round of each is reported (the machine is shared), with the
        //    server's own time per field from INFO commandstats.
        var peerBest = Double.infinity
        var writeBest = Double.infinity
        var peerServer = Double.infinity
        var writeServer = Double.infinity
        var bytesPerScore = 0.0
        for _ in 0..<rounds {
            _ = try admin.sendChecked(["FLUSHALL", "SYNC"])
            _ = try admin.sendChecked(["CONFIG", "RESETSTAT"])
            let peerStart = ContinuousClock.now
            let process = Process()
            process.executableURL = URL(fileURLWithPath: redisCLI)
            process.arguments = ["-h", endpoint.host, "-p", String(endpoint.port), "--pipe"]
            process.standardInput = try FileHandle(forReadingFrom: file)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            peerBest = min(peerBest, Self.seconds(ContinuousClock.now - peerStart))
            guard process.terminationStatus == 0 else { throw ValidationError("redis-cli --pipe failed (\(process.terminationStatus))") }
            peerServer = min(peerServer, Self.totalUsec(admin, ["hset"]) / fields)

            // Kindred's whole-set writes (temporary keys, TTL, atomic replace), from empty.
            _ = try admin.sendChecked(["FLUSHALL", "SYNC"])
            _ = try admin.sendChecked(["CONFIG", "RESETSTAT"])
            let memoryBefore = Self.info(admin, "memory", "used_memory").flatMap { Int($0) } ?? 0
            let writeStart = ContinuousClock.now
            for (index, matches) in sets.enumerated() {
                try store.writeSet(MemberID(1 + index), shard: 1, matches: matches, answersVersion: "bench", limit: topN, complete: false)
            }
            writeBest = min(writeBest, Self.seconds(ContinuousClock.now - writeStart))
            writeServer = min(writeServer, Self.totalUsec(admin, ["hset", "pexpire", "evalsha"]) / fields)
            let memoryAfter = Self.info(admin, "memory", "used_memory").flatMap { Int($0) } ?? 0
            bytesPerScore = Double(memoryAfter - memoryBefore) / fields

        }
        var usage = 0
        for key in layout.liveKeys(1) + [layout.metaKey(1)] {
            usage += (try admin.send(["MEMORY", "USAGE", key, "SAMPLES", "0"])).int ?? 0
        }
        let encoding = (try admin.send(["OBJECT", "ENCODING", layout.liveKey(1, bucket: 0)])).string ?? "?"

        // 3. Sorted reads of one 5000-entry set.
        _ = try admin.sendChecked(["CONFIG", "RESETSTAT"])
        var readTimes: [Double] = []
        for index in 0..<reads {
            let start = ContinuousClock.now
            let set = try store.readSet(MemberID(1 + index % sets.count), shard: 1)
            readTimes.append(Self.seconds(ContinuousClock.now - start) * 1000)
            guard set?.matches.count == topN else { throw ValidationError("a read came back with \(set?.matches.count ?? -1) entries") }
        }
        readTimes.sort()
        let readServerMs = Self.usecPerCall(admin, "exec") / 1000

        // 4. Placements that enter: sets that hold every candidate (no
        //    floor), with N large, so every placement adds.
        _ = try admin.sendChecked(["FLUSHALL", "SYNC"])
        for (index, matches) in sets.enumerated() {
            try store.writeSet(MemberID(1 + index), shard: 1, matches: matches, answersVersion: "bench", limit: 1_000_000, complete: true)
        }
        _ = try admin.sendChecked(["CONFIG", "RESETSTAT"])
        var generator = SplitMix(seed: UInt64(b))
        let placers = 1000
        let perMember = max(1, offers / placers)
        func placements(from member: MemberID) -> [ScoreStore.Placement] {
            (0..<perMember).map { _ in
                ScoreStore.Placement(
                    target: MemberID(1 + generator.next() % UInt64(sets.count)), member: member,
                    tenths: Int(generator.next() % 101), answersVersion: "bench")
            }
        }
        var entering: [ScoreStore.PlacementResults] = []
        let enterStart = ContinuousClock.now
        for placer in 0..<placers {
            entering.append(store.place(placements(from: MemberID(10_000_000 + placer)), limit: 1_000_000) { _ in 1 })
        }
        let enterSeconds = Self.seconds(ContinuousClock.now - enterStart)
        // Per placement, not per call: a standalone shard takes many per call (placeMany).
        let enterUsec = Self.totalUsec(admin, ["evalsha"]) / Double(placers * perMember)

        // 5. Placements into full sets (written at N with a floor): random
        //    scores, so most fall below the floor; the ones that enter trim
        //    now and then.
        _ = try admin.sendChecked(["FLUSHALL", "SYNC"])
        for (index, matches) in sets.enumerated() {
            try store.writeSet(MemberID(1 + index), shard: 1, matches: matches, answersVersion: "bench", limit: topN, complete: false)
        }
        _ = try admin.sendChecked(["CONFIG", "RESETSTAT"])
        var full: [ScoreStore.PlacementResults] = []
        let fullStart = ContinuousClock.now
        for placer in 0..<placers {
            full.append(store.place(placements(from: MemberID(20_000_000 + placer)), limit: topN) { _ in 1 })
        }
        let fullSeconds = Self.seconds(ContinuousClock.now - fullStart)
        let fullUsec = Self.totalUsec(admin, ["evalsha"]) / Double(placers * perMember)
        let fullTrimmed = full.reduce(0) { $0 + $1.replies.reduce(0) { $0 + ($1?.trimmed ?? 0) } }
        // 6. One trim's server time: sets at N + S + W, then one more placement.
        _ = try admin.sendChecked(["FLUSHALL", "SYNC"])
        let slack = storeConfiguration.slack(forLimit: topN)
        let window = storeConfiguration.trimWindow(forLimit: topN)
        var trimMs: [Double] = []
        for index in 0..<min(20, sets.count) {
            let member = MemberID(1 + index)
            try store.writeSet(member, shard: 1, matches: sets[index], answersVersion: "bench", limit: topN, complete: false)
            let high = (0...(slack + window)).map {
                ScoreStore.Placement(target: member, member: MemberID(30_000_000 + $0), tenths: 100, answersVersion: "bench")
            }
            _ = store.place(Array(high.dropLast()), limit: topN) { _ in 1 }
            _ = try admin.sendChecked(["CONFIG", "RESETSTAT"])
            let last = store.place([high.last!], limit: topN) { _ in 1 }
            guard last.replies.first??.trimmed == window + 1 else {
                throw ValidationError("expected a trim of \(window + 1), got \(String(describing: last.replies.first??.trimmed))")
            }
            trimMs.append(Self.usecPerCall(admin, "evalsha") / 1000)
        }
        trimMs.sort()

        let failed = (entering + full).reduce(0) { $0 + $1.failed }
        guard failed == 0 else { throw ValidationError("placements failed: \((entering + full).flatMap(\.errors))") }
        let placed = Double(placers * perMember)

        let writeRate = fields / writeBest
        let peerRate = fields / peerBest
        print(String(
            format: "| %d | %@ | %.1f | %.1f | %.0fk | %.0fk | %.0f%% | %.2f, %.2f | %.2f, %.2f; %.2f | %.0fk | %.1f | %.0fk | %.1f | %d | %.2f |",
            b, encoding, bytesPerScore, Double(usage) / Double(topN), writeRate / 1e3, peerRate / 1e3, 100 * writeRate / peerRate, writeServer, peerServer,
            readTimes[readTimes.count / 2], readTimes[readTimes.count * 9 / 10], readServerMs,
            placed / enterSeconds / 1e3, enterUsec,
            placed / fullSeconds / 1e3, fullUsec, fullTrimmed, trimMs[trimMs.count / 2]))
        fflush(nil)
    }

    /// A deterministic ranked set: ids spread over 1 ... 2M, scores skewed high.
    static func matches(for member: MemberID, count: Int) -> [Match] {
        var generator = SplitMix(seed: UInt64(member))
        var seen = Set<MemberID>()
        var matches: [Match] = []
        matches.reserveCapacity(count)
        while matches.count < count {
            let id = MemberID(1 + generator.next() % 2_000_000)
            guard id != member, seen.insert(id).inserted else { continue }
            matches.append(Match(id: id, tenths: 40 + Int(generator.next() % 61)))
        }
        return matches.sorted(by: Match.ranksBefore)
    }

    static func seconds(_ duration: Duration) -> Double {
        duration.inSeconds
    }

    static func info(_ redis: RedisConnection, _ section: String, _ field: String) -> String? {
        guard let text = try? redis.sendChecked(["INFO", section]).string else { return nil }
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix(field + ":") {
            return String(line.dropFirst(field.count + 1))
        }
        return nil
    }

    /// Total server microseconds spent in `commands` since the last RESETSTAT.
    static func totalUsec(_ redis: RedisConnection, _ commands: [String]) -> Double {
        guard let text = try? redis.sendChecked(["INFO", "commandstats"]).string else { return 0 }
        var total = 0.0
        for line in text.split(whereSeparator: \.isNewline) {
            for command in commands where line.hasPrefix("cmdstat_\(command):") {
                if let usec = line.split(separator: ",").first(where: { $0.hasPrefix("usec=") }) {
                    total += Double(usec.dropFirst("usec=".count)) ?? 0
                }
            }
        }
        return total
    }

    static func usecPerCall(_ redis: RedisConnection, _ command: String) -> Double {
        guard let text = try? redis.sendChecked(["INFO", "commandstats"]).string else { return 0 }
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_\(command):") {
            for part in line.split(separator: ",") where part.hasPrefix("usec_per_call=") {
                return Double(part.dropFirst("usec_per_call=".count)) ?? 0
            }
        }
        return 0
    }
}

/// SplitMix64, for reproducible benchmark data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
