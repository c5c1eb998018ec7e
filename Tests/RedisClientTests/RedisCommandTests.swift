import RedisClient
import Testing
import TestSupport

/// RESP encoding, checked byte for byte without a server.
@Suite("RedisCommand encoding", .offCooperativePool)
struct RedisCommandTests {
    private func resp(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func stringArgumentsAreBulkStrings() {
        let command = RedisCommand("SET", "key", "value")
        #expect(command.encodedBytes == resp("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"))
        #expect(command.argumentCount == 3)
        #expect(command.name == "SET")
    }

    @Test func arrayLiteralIsTheSameCommand() {
        let literal: RedisCommand = ["SET", "key", "value"]
        #expect(literal.encodedBytes == RedisCommand("SET", "key", "value").encodedBytes)
    }

    @Test func lengthsCountUTF8Bytes() {
        let command = RedisCommand("SET", "clé", "")
        #expect(command.encodedBytes == resp("*3\r\n$3\r\nSET\r\n$4\r\nclé\r\n$0\r\n\r\n"))
    }

    @Test(arguments: [
        (0, "0"), (7, "7"), (-1, "-1"), (4242, "4242"),
        (Int.max, "9223372036854775807"), (Int.min, "-9223372036854775808"),
    ])
    func integersAreDecimal(value: Int, text: String) {
        var command = RedisCommand("X")
        command.append(value)
        #expect(command.encodedBytes == resp("*2\r\n$1\r\nX\r\n$\(text.utf8.count)\r\n\(text)\r\n"))
    }

    @Test func otherIntegerTypesAreDecimal() {
        var command = RedisCommand("X")
        command.append(UInt64.max)
        command.append(Int8(-5))
        command.append(UInt32(17))
        #expect(command.encodedBytes == resp("*4\r\n$1\r\nX\r\n$20\r\n18446744073709551615\r\n$2\r\n-5\r\n$2\r\n17\r\n"))
    }

    @Test(arguments: [
        (73, 1, "7.3"), (100, 1, "10.0"), (0, 1, "0.0"), (5, 1, "0.5"), (-5, 1, "-0.5"),
        (-73, 1, "-7.3"), (7, 0, "7"), (5, 3, "0.005"), (123_456, 2, "1234.56"),
        (Int.min, 2, "-92233720368547758.08"),
    ])
    func fixedPointNumbers(value: Int, digits: Int, text: String) {
        var command = RedisCommand("X")
        command.append(fixedPoint: value, fractionDigits: digits)
        #expect(command.encodedBytes == resp("*2\r\n$1\r\nX\r\n$\(text.utf8.count)\r\n\(text)\r\n"))
    }

    @Test func rawBytesAreBinarySafe() {
        let payload: [UInt8] = [0x61, 0x0D, 0x0A, 0x00, 0xFF, 0x24]
        var command = RedisCommand("SET")
        command.append(bytes: payload)
        command.append(bytes: payload[1...2])  // a slice (contiguous)
        command.append(bytes: payload.lazy.map { $0 })  // not contiguous
        #expect(command.encodedBytes == resp("*4\r\n$3\r\nSET\r\n$6\r\n") + payload + resp("\r\n$2\r\n\r\n\r\n$6\r\n") + payload + resp("\r\n"))
    }

    @Test("arguments of every length around the short-argument framing (0 ... 300 bytes) encode as $len CRLF bytes CRLF")
    func everyLength() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...300 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var command = RedisCommand("X")
            command.append(bytes: bytes)
            command.append(bytes: bytes)
            let argument = Array("$\(length)\r\n".utf8) + bytes + Array("\r\n".utf8)
            #expect(command.encodedBytes == Array("*3\r\n$1\r\nX\r\n".utf8) + argument + argument, "length \(length)")
            #expect(command.argumentCount == 3)
        }
    }

    @Test func resetStartsOverAndKeepsTheBuffer() {
        var command = RedisCommand("HSET", reservingCapacity: 1024)
        for field in 0..<50 { command.append(field); command.append(fixedPoint: field, fractionDigits: 1) }
        #expect(command.argumentCount == 101)
        command.reset("GET")
        command.append("k")
        #expect(command.encodedBytes == resp("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"))
        #expect(command.encodedByteCount == 16)
        #expect(command.name == "GET")
    }

    @Test func descriptionNeverShowsArguments() {
        var command = RedisCommand("HSET", "scores:{17}")
        command.append("member-secret")
        command.append(fixedPoint: 73, fractionDigits: 1)
        #expect(command.description == "RedisCommand(HSET, 4 arguments, \(command.encodedByteCount) bytes)")
        #expect(!"\(command)".contains("secret"))
        #expect(!"\(command)".contains("7.3"))
    }
}
