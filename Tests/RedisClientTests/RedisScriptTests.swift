@testable import RedisClient
import Testing
import TestSupport

@Suite("Lua scripts", .timeLimit(.minutes(1)), .offCooperativePool)
struct RedisScriptTests {
    @Test("SHA-1 matches known digests (and so Redis' script names)")
    func sha1() {
        #expect(SHA1.hex([]) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(SHA1.hex(Array("return 1".utf8)) == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
        #expect(SHA1.hex(Array(String(repeating: "a", count: 1000).utf8)) == "291e9a6c66994949b57ba5e650361e98fc36b1ba")
    }

    @Test("evaluate runs a script the server has not seen, then by its SHA")
    func evaluate() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try redis.evaluate(script, keys: ["n"], arguments: ["5"]) == .integer(5))
        // Now cached: a pipelined EVALSHA works without a fallback.
        redis.appendEvaluation(script, keys: ["n"], arguments: ["2"])
        #expect(try redis.readReply() == .integer(7))
        let exists = try redis.send(["SCRIPT", "EXISTS", script.sha1]).array
        #expect(exists == [.integer(1)])
        // After SCRIPT FLUSH (a restarted server), evaluate still works.
        _ = try redis.send(["SCRIPT", "FLUSH"])
        #expect(try redis.evaluate(script, keys: ["n"], arguments: ["1"]) == .integer(8))
        // A script error is a value, not a broken connection.
        let failing = RedisScript("return redis.call('HSET', KEYS[1], 'f')")
        #expect(try redis.evaluate(failing, keys: ["n"], arguments: []).errorMessage != nil)
        #expect(try redis.send(["PING"]) == .status("PONG"))
    }
}

@Suite("Redis URLs", .offCooperativePool)
struct RedisURLTests {
    @Test("accepted forms")
    func accepted() throws {
        #expect(try RedisURL("redis://127.0.0.1:7000") == RedisURL(host: "127.0.0.1", port: 7000))
        #expect(try RedisURL("redis://shard-3.internal") == RedisURL(host: "shard-3.internal", port: 6379))
        #expect(try RedisURL("redis://[::1]:7001") == RedisURL(host: "::1", port: 7001))
        #expect(try RedisURL("redis://[::1]:7001").description == "redis://[::1]:7001")
        #expect(try RedisURL("redis://cache.local:6380/") == RedisURL(host: "cache.local", port: 6380))
    }

    @Test("rejected forms name the problem", arguments: [
        "127.0.0.1:7000", "redis://", "redis://host:0", "redis://host:70000", "redis://host:port",
        "redis://user@host:1", "redis://host:1/x", "redis://ho st:1", "redis://[::1:7001", "redis://host:+1",
        "redis://host:1#x",
    ])
    func rejected(_ text: String) {
        #expect(throws: RedisURLError.self) { try RedisURL(text) }
    }
}
