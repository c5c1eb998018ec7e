import CHiredis

/// A reply as hiredis parsed it, read in place: no copy into ``RedisValue``.
/// Unsafe like a buffer pointer: valid only inside the closure given to
/// ``RedisConnection/readReply(inPlace:)``; for large replies read on a hot
/// path (a whole score set is ten thousand strings), where copying every
/// string into its own Swift array would cost more than the round trip.
package struct UnsafeRawReply {
    private let reply: UnsafePointer<redisReply>

    package init(_ reply: UnsafePointer<redisReply>) { self.reply = reply }

    package enum Kind: Sendable, Hashable {
        case string, status, error, integer, null, array, unknown
    }

    package var kind: Kind {
        switch reply.pointee.type {
        case REDIS_REPLY_STRING: .string
        case REDIS_REPLY_STATUS: .status
        case REDIS_REPLY_ERROR: .error
        case REDIS_REPLY_INTEGER: .integer
        case REDIS_REPLY_NIL: .null
        case REDIS_REPLY_ARRAY: .array
        default: .unknown
        }
    }

    /// The bytes of a string, status or error reply (empty for others).
    package func withBytes<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T {
        let r = reply.pointee
        guard r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS || r.type == REDIS_REPLY_ERROR, let str = r.str
        else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return body(UnsafeRawBufferPointer(start: str, count: r.len))
    }

    /// Elements of an array reply (0 for others).
    package var count: Int { reply.pointee.type == REDIS_REPLY_ARRAY ? reply.pointee.elements : 0 }

    /// Element `index` of an array reply; nil when absent. Valid as long as this reply is.
    package func element(_ index: Int) -> UnsafeRawReply? {
        guard index >= 0, index < count, let element = reply.pointee.element[index] else { return nil }
        return UnsafeRawReply(UnsafePointer(element))
    }

    /// A copy of the reply as a value (for the small parts of a large reply).
    package var value: RedisValue { RedisValue(copying: reply) }
}

extension RedisConnection {
    /// Reads the reply to the oldest appended command and hands it to
    /// `body` in place, before hiredis frees it. Same contract as
    /// ``readReply()`` otherwise.
    package func readReply<T>(inPlace body: (UnsafeRawReply) -> T) throws(RedisError) -> T {
        try withNextRawReply { raw in body(UnsafeRawReply(raw)) }
    }
}
