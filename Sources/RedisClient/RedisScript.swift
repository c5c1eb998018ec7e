/// A Lua script run with `EVALSHA`, falling back to `EVAL` when the server
/// does not have it cached (`NOSCRIPT`: a restarted or new server), so
/// callers never manage `SCRIPT LOAD`. The SHA-1 is computed here, once.
///
/// Scripts must name every key they touch in `keys` (Redis Cluster rules);
/// all keys of one call must share a hash slot.
package struct RedisScript: Sendable, Hashable {
    package let source: String
    /// Lower-case hex SHA-1 of `source`, as Redis names cached scripts.
    package let sha1: String

    package init(_ source: String) {
        self.source = source
        sha1 = SHA1.hex(Array(source.utf8))
    }
}

extension RedisConnection {
    /// Runs `script` with `keys` and `arguments` in one round trip (two on the
    /// first use against a server that has not seen it). Error replies are
    /// values, as with ``send(_:)``.
    package func evaluate(
        _ script: RedisScript, keys: [String], arguments: [String]
    ) throws(RedisError) -> RedisValue {
        let reply = try send(Self.evalCommand(script, keys: keys, arguments: arguments, sha: true))
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            return try send(Self.evalCommand(script, keys: keys, arguments: arguments, sha: false))
        }
        return reply
    }

    /// Appends an `EVALSHA` for pipelining (see ``append(_:)``). A `NOSCRIPT`
    /// reply to it means the server lacks the script: call ``loadScript(_:)``
    /// and send the batch again, or use ``evaluate(_:keys:arguments:)``.
    package func appendEvaluation(_ script: RedisScript, keys: [String], arguments: [String]) {
        append(Self.evalCommand(script, keys: keys, arguments: arguments, sha: true))
    }

    /// Makes the server cache `script` (`SCRIPT LOAD`), so pipelined
    /// `EVALSHA`s of it succeed.
    package func loadScript(_ script: RedisScript) throws(RedisError) {
        var command = RedisCommand("SCRIPT")
        command.append("LOAD")
        command.append(script.source)
        _ = try sendChecked(command)
    }

    static func evalCommand(_ script: RedisScript, keys: [String], arguments: [String], sha: Bool) -> RedisCommand {
        var command = RedisCommand(sha ? "EVALSHA" : "EVAL")
        command.append(sha ? script.sha1 : script.source)
        command.append(keys.count)
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        return command
    }
}

/// SHA-1 (FIPS 180-4), only to name Lua scripts the way Redis does. Not for
/// anything that needs collision resistance.
enum SHA1 {
    static func hex(_ message: [UInt8]) -> String {
        var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        var padded = message
        padded.append(0x80)
        while padded.count % 64 != 56 { padded.append(0) }
        let bitLength = UInt64(message.count) * 8
        for shift in stride(from: 56, through: 0, by: -8) { padded.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: padded.count, by: 64) {
            for i in 0..<16 {
                let b = chunk + 4 * i
                w[i] = UInt32(padded[b]) << 24 | UInt32(padded[b + 1]) << 16 | UInt32(padded[b + 2]) << 8 | UInt32(padded[b + 3])
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = x << 1 | x >> 31
            }
            var (a, b, c, d, e) = h
            for i in 0..<80 {
                let f: UInt32, k: UInt32
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let t = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
                e = d
                d = c
                c = b << 30 | b >> 2
                b = a
                a = t
            }
            h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e)
        }
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for word in [h.0, h.1, h.2, h.3, h.4] {
            for shift in stride(from: 28, through: 0, by: -4) { out.append(digits[Int(word >> UInt32(shift) & 0xF)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
