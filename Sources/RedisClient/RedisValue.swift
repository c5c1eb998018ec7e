import CHiredis

/// One reply from a Redis-compatible server, copied out of hiredis' `redisReply`
/// before the C memory is freed.
///
/// A `RedisValue` owns all its memory: it stays valid after the connection that
/// read it is closed, and it may cross threads (`Sendable`).
///
/// An error reply (`-ERR ...`, `-WRONGTYPE ...`) is a *value* here, not a thrown
/// error: the connection is fine and the next command can be sent. Call
/// ``checked(context:)`` to turn it into a thrown ``RedisError``.
///
/// Cost: copying a reply allocates once per bulk string and once per array, so
/// an `HGETALL` of a 5000-field hash makes ~10,000 small arrays.
package enum RedisValue: Sendable, Hashable {
    /// A bulk string (`$len\r\n...`): arbitrary bytes, binary safe (may hold
    /// `\r\n` and NUL).
    case bulkString([UInt8])
    /// A simple status reply (`+OK`).
    case status(String)
    /// An integer reply (`:42`).
    case integer(Int)
    /// An array reply (`*N`), possibly nested and possibly empty.
    case array([RedisValue])
    /// The null bulk string or null array (`$-1`, `*-1`): a missing key.
    case null
    /// An error reply (`-ERR ...`). The message starts with the error kind
    /// (`ERR`, `WRONGTYPE`, `BUSY`, `LOADING`, ...).
    case error(String)
}

// MARK: - Accessors

extension RedisValue {
    /// The integer of an integer reply; `nil` for every other kind (a bulk
    /// string holding digits is not converted: use `string.flatMap { Int($0) }`).
    package var int: Int? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The bytes of a bulk string; `nil` for every other kind.
    package var bytes: [UInt8]? {
        if case .bulkString(let bytes) = self { return bytes }
        return nil
    }

    /// A bulk string decoded as UTF-8, or the text of a status reply; `nil` for
    /// other kinds and for bulk strings that are not valid UTF-8.
    package var string: String? {
        switch self {
        case .bulkString(let bytes): return String(validating: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }

    /// The elements of an array reply; `nil` for every other kind.
    package var array: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// True for the null reply.
    package var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The message of an error reply; `nil` for every other kind.
    package var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// The first word of an error reply (`WRONGTYPE`, `BUSY`, ...); `nil` for
    /// every other kind.
    package var errorKind: String? {
        errorMessage.map(RedisError.kind(ofServerMessage:))
    }

    /// Returns `self`, or throws a ``RedisError`` with code
    /// ``RedisError/Code/serverError`` when this is an error reply.
    ///
    /// - Parameter context: where the reply came from (`host:port`), for the
    ///   error's description.
    package func checked(context: String = "") throws(RedisError) -> RedisValue {
        if case .error(let message) = self {
            throw RedisError.serverError(message, context: context)
        }
        return self
    }
}

extension Result where Success == RedisValue, Failure == RedisError {
    /// The value of a pipeline result, throwing both a broken connection and an
    /// error reply (as ``RedisError/Code/serverError``).
    package func checked() throws(RedisError) -> RedisValue {
        try get().checked()
    }
}

// MARK: - Copying out of hiredis

extension RedisValue {
    /// Copies `reply` (and its elements) into a Swift value. The caller still
    /// owns `reply` and frees it with `freeReplyObject` afterwards.
    package init(copying reply: UnsafePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            self = .bulkString(Array(UnsafeRawBufferPointer(start: r.str, count: r.len)))
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int(r.integer))
        case REDIS_REPLY_NIL:
            self = .null
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                if let element = r.element[index] {
                    elements.append(RedisValue(copying: element))
                } else {
                    elements.append(.null)
                }
            }
            self = .array(elements)
        default:
            // hiredis 0.14 only produces the six kinds above (no RESP3).
            self = .error("unknown hiredis reply type \(r.type)")
        }
    }
}
