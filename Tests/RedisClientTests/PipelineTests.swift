import RedisClient
import Testing
import TestSupport

/// Pipelines: one result per command, streaming, and a member-sized write.
@Suite("Pipelines", .timeLimit(.minutes(1)), .offCooperativePool)
struct PipelineTests {
    @Test func aFailingCommandDoesNotHideTheOthers() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        let results = redis.pipeline([
            ["SET", "s", "text"],
            ["HSET", "s", "f", "v"],  // WRONGTYPE
            ["INCR", "counter"],
            ["GET", "s"],
        ])
        #expect(results.count == 4)
        #expect(try results[0].get() == .status("OK"))
        #expect(try results[1].get().errorKind == "WRONGTYPE")
        #expect(try results[2].get() == .integer(1))
        #expect(try results[3].get().string == "text")
        #expect(throws: RedisError.self) { try results[1].checked() }
        #expect(redis.pendingReplyCount == 0)
        #expect(try redis.send(["PING"]) == .status("PONG"))
    }

    @Test func anEmptyPipelineSendsNothing() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        #expect(redis.pipeline([RedisCommand]()).isEmpty)
        #expect(try redis.send(["PING"]) == .status("PONG"))
    }

    @Test func streamingRepliesComeBackInOrder() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        redis.append(["RPUSH", "q", "a"])
        redis.append("RPUSH") { command in
            command.append("q")
            command.append(2)
        }
        redis.append(["LRANGE", "q", "0", "-1"])
        #expect(redis.pendingReplyCount == 3)
        #expect(try redis.readReply() == .integer(1))
        #expect(try redis.readReply() == .integer(2))
        #expect(try redis.readReply().array?.compactMap(\.string) == ["a", "2"])
        #expect(redis.pendingReplyCount == 0)
    }

    @Test func aThrowingBuilderQueuesNothing() throws {
        struct Stop: Error {}
        let server = try RedisServer()
        let redis = try server.connect()
        #expect(throws: Stop.self) {
            try redis.append("SET") { command in
                command.append("k")
                throw Stop()
            }
        }
        #expect(redis.pendingReplyCount == 0)
        #expect(try redis.send(["EXISTS", "k"]) == .integer(0))
    }

    /// A member's 5000 scores written as 5 variadic HSETs of 1000 fields,
    /// streamed, then read back whole.
    @Test func fiveThousandFieldsInBatchesOfAThousand() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        let scores = (0..<5000).map { index in (other: 1_000_000 + index * 7, tenths: (index * 37) % 101) }
        for batch in stride(from: 0, to: scores.count, by: 1000) {
            redis.append("HSET") { command in
                command.append("scores:{17}")
                for (other, tenths) in scores[batch..<(batch + 1000)] {
                    command.append(other)
                    command.append(fixedPoint: tenths, fractionDigits: 1)
                }
            }
        }
        #expect(redis.pendingReplyCount == 5)
        for _ in 0..<5 { #expect(try redis.readReply() == .integer(1000)) }

        #expect(try redis.send(["HLEN", "scores:{17}"]) == .integer(5000))
        let flat = try #require(try redis.send(["HGETALL", "scores:{17}"]).array)
        #expect(flat.count == 10_000)
        var stored: [String: String] = [:]
        for pair in stride(from: 0, to: flat.count, by: 2) {
            let field = try #require(flat[pair].string)
            let value = try #require(flat[pair + 1].string)
            stored[field] = value
        }
        let expected = Dictionary(uniqueKeysWithValues: scores.map { ("\($0.other)", "\($0.tenths / 10).\($0.tenths % 10)") })
        #expect(stored == expected)
        #expect(stored["1000007"] == "3.7")
        #expect(stored["1000000"] == "0.0")
    }

    /// The same volume through `pipeline(_:)` with many commands per call.
    @Test func manyCommandsInOnePipeline() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        var commands: [RedisCommand] = []
        for index in 0..<5000 {
            var command = RedisCommand("HSET", "h")
            command.append(index)
            command.append(fixedPoint: index % 101, fractionDigits: 1)
            commands.append(command)
        }
        for batch in stride(from: 0, to: commands.count, by: 1000) {
            let results = redis.pipeline(commands[batch..<(batch + 1000)])
            #expect(results.count == 1000)
            #expect(results.allSatisfy { (try? $0.get()) == .integer(1) })
        }
        #expect(try redis.send(["HLEN", "h"]) == .integer(5000))
        #expect(try redis.send(["HGET", "h", "4243"]).string == "0.1")
    }
}
