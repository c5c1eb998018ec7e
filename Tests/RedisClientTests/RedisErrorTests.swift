import RedisClient
import Testing
import TestSupport

/// Codes, the broken-connection flag, and keeping arguments out of descriptions.
@Suite("RedisError", .offCooperativePool)
struct RedisErrorTests {
    @Test func onlyDeadConnectionsAreBroken() {
        func error(_ code: RedisError.Code) -> RedisError { RedisError(code: code, message: "m", context: "h:1") }
        #expect(error(.connectionBroken).isConnectionBroken)
        #expect(error(.timedOut).isConnectionBroken)
        #expect(!error(.connectionFailed).isConnectionBroken)
        #expect(!error(.serverError).isConnectionBroken)
        #expect(RedisError.Code.timedOut != .connectionBroken)
    }

    @Test func errorReplyBecomesServerErrorWithItsKind() throws {
        let value = RedisValue.error("WRONGTYPE Operation against a key holding the wrong kind of value")
        #expect(value.errorKind == "WRONGTYPE")
        let error = try #require(throws: RedisError.self) { try value.checked(context: "127.0.0.1:6379") }
        #expect(error.code == .serverError)
        #expect(error.serverErrorKind == "WRONGTYPE")
        #expect(error.context == "127.0.0.1:6379")
        #expect(error.description == "RedisError.serverError at 127.0.0.1:6379: WRONGTYPE Operation against a key holding the wrong kind of value")
        #expect(try RedisValue.integer(1).checked() == .integer(1))
    }

    @Test func argumentEchoIsRemovedFromServerErrors() throws {
        let reply = RedisValue.error("ERR unknown command 'HSETT', with args beginning with: 'scores:{17}' '4242' '7.3' ")
        let error = try #require(throws: RedisError.self) { try reply.checked() }
        #expect(error.message == "ERR unknown command 'HSETT'")
        #expect(!error.description.contains("4242"))
    }

    @Test func longServerMessagesAreCut() throws {
        let reply = RedisValue.error("ERR " + String(repeating: "x", count: 1000))
        let error = try #require(throws: RedisError.self) { try reply.checked() }
        #expect(error.message.count == 203)
    }

    @Test func pipelineResultsCanBeChecked() throws {
        let ok: Result<RedisValue, RedisError> = .success(.status("OK"))
        let reply: Result<RedisValue, RedisError> = .success(.error("ERR no"))
        let broken: Result<RedisValue, RedisError> = .failure(RedisError(code: .connectionBroken, message: "eof", context: ""))
        #expect(try ok.checked() == .status("OK"))
        #expect(throws: RedisError.self) { try reply.checked() }
        let error = try #require(throws: RedisError.self) { try broken.checked() }
        #expect(error.isConnectionBroken)
    }
}
