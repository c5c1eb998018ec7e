import RedisClient
import Testing
import TestSupport

/// Every kind of reply, read from a real redis-server.
@Suite("Replies", .timeLimit(.minutes(1)), .offCooperativePool)
struct RepliesTests {
    @Test func statusBulkIntegerAndNull() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        #expect(try redis.send(["SET", "k", "v"]) == .status("OK"))
        #expect(try redis.send(["SET", "k", "v"]).string == "OK")
        #expect(try redis.send(["GET", "k"]) == .bulkString(Array("v".utf8)))
        #expect(try redis.send(["GET", "k"]).string == "v")
        #expect(try redis.send(["GET", "missing"]) == .null)
        #expect(try redis.send(["GET", "missing"]).isNull)

        var increment = RedisCommand("INCRBY", "n")
        increment.append(-42)
        #expect(try redis.send(increment) == .integer(-42))
        #expect(try redis.send(increment).int == -84)
        #expect(try redis.send(["GET", "n"]).int == nil)  // a bulk string, not an integer reply
    }

    @Test func bulkStringsAreBinarySafe() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        let key: [UInt8] = Array("key\0with\r\nbreaks".utf8)
        let payload: [UInt8] = Array("a\r\nb".utf8) + [0, 0, 0xFF, 0x0D, 0x0A] + Array("$5\r\n*3\r\n-ERR\r\n".utf8)
        var set = RedisCommand("SET")
        set.append(bytes: key)
        set.append(bytes: payload)
        #expect(try redis.send(set) == .status("OK"))

        var get = RedisCommand("GET")
        get.append(bytes: key)
        let value = try redis.send(get)
        #expect(value == .bulkString(payload))
        #expect(value.bytes == payload)
        #expect(value.string == nil)  // 0xFF is not UTF-8

        var length = RedisCommand("STRLEN")
        length.append(bytes: key)
        #expect(try redis.send(length) == .integer(payload.count))

        #expect(try redis.send(["SET", "empty", ""]) == .status("OK"))
        #expect(try redis.send(["GET", "empty"]) == .bulkString([]))  // empty, not null
    }

    @Test func arraysNestedEmptyAndMixed() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        #expect(try redis.send(["RPUSH", "list", "a", "b", "c"]) == .integer(3))
        #expect(try redis.send(["LRANGE", "list", "0", "-1"]).array?.compactMap(\.string) == ["a", "b", "c"])
        #expect(try redis.send(["LRANGE", "missing", "0", "-1"]) == .array([]))

        let script = "return {1, 'two', {3, {'four'}}, redis.status_reply('FINE'), redis.error_reply('INNER oops'), false, -7}"
        let value = try redis.send(["EVAL", script, "0"])
        #expect(value == .array([
            .integer(1),
            .bulkString(Array("two".utf8)),
            .array([.integer(3), .array([.bulkString(Array("four".utf8))])]),
            .status("FINE"),
            .error("INNER oops"),
            .null,
            .integer(-7),
        ]))
    }

    @Test func errorReplyIsAValueAndTheConnectionStaysUsable() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        #expect(try redis.send(["SET", "s", "text"]) == .status("OK"))
        let reply = try redis.send(["HSET", "s", "f", "v"])
        #expect(reply.errorKind == "WRONGTYPE")
        #expect(reply.errorMessage?.hasPrefix("WRONGTYPE ") == true)
        #expect(!redis.isBroken)
        #expect(try redis.send(["PING"]) == .status("PONG"))

        let thrown = try #require(throws: RedisError.self) { try redis.sendChecked(["HSET", "s", "f", "v"]) }
        #expect(thrown.code == .serverError)
        #expect(thrown.serverErrorKind == "WRONGTYPE")
        #expect(thrown.command == "HSET")
        #expect(thrown.context == "127.0.0.1:\(server.port)")
        #expect(!thrown.isConnectionBroken)
        #expect(try redis.sendChecked(["GET", "s"]).string == "text")
    }

    @Test func errorDescriptionsLeaveArgumentsOut() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        let secret = "member-4242-secret"
        // The server echoes the arguments of an unknown command...
        let reply = try redis.send(["NOSUCHCOMMAND", secret, "7.3"])
        #expect(reply.errorMessage?.contains(secret) == true)
        // ...the thrown error does not.
        let thrown = try #require(throws: RedisError.self) { try redis.sendChecked(["NOSUCHCOMMAND", secret, "7.3"]) }
        #expect(!thrown.description.contains(secret))
        #expect(thrown.description.contains("NOSUCHCOMMAND"))
    }
}
