/// One command, already encoded in RESP, ready to be appended to a connection.
///
/// Arguments are encoded as they are appended, into one growable byte buffer:
/// `$len\r\n<bytes>\r\n` each. The `*N\r\n` header is written when the command
/// is sent, so no argument is ever moved. Appending allocates nothing per
/// argument (integers and fixed-point numbers are formatted on the stack); the
/// buffer grows geometrically, and ``reset(_:)`` keeps its capacity so one
/// `RedisCommand` can encode many commands in a row.
///
///     var command = RedisCommand("HSET", reservingCapacity: 24_000)
///     command.append("scores:{17}")
///     for (other, tenths) in matches {
///         command.append(other)                                // "4242"
///         command.append(fixedPoint: tenths, fractionDigits: 1) // "7.3"
///     }
///
/// Invariant: a command has at least one argument, its name. Binary-safe: any
/// bytes may be an argument.
///
/// Privacy: `description` shows the name and sizes only, never the arguments,
/// so a command can be logged or interpolated without leaking member data.
package struct RedisCommand: Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    /// The encoded arguments, without the `*N\r\n` header.
    @usableFromInline var body: [UInt8]
    /// How many arguments `body` holds.
    @usableFromInline var storedArgumentCount: Int
    /// The command's name as given (`HSET`): safe to log.
    package private(set) var name: String

    /// A command with its name as the first argument.
    package init(_ name: String) {
        self.init(name, reservingCapacity: 64)
    }

    /// A command with its name and room for `capacity` encoded bytes (each
    /// argument costs its length plus 5 to 9 bytes of framing).
    package init(_ name: String, reservingCapacity capacity: Int) {
        body = []
        body.reserveCapacity(max(capacity, 16))
        storedArgumentCount = 0
        self.name = name
        append(name)
    }

    /// A command from its name and string arguments: `RedisCommand("GET", key)`.
    package init(_ name: String, _ arguments: String...) {
        self.init(name, reservingCapacity: 16 + name.utf8.count + arguments.reduce(0) { $0 + $1.utf8.count + 16 })
        for argument in arguments { append(argument) }
    }

    /// A command from a non-empty list of strings: `["SET", key, value]`.
    package init(arrayLiteral elements: String...) {
        precondition(!elements.isEmpty, "a Redis command needs at least its name")
        self.init(elements[0], reservingCapacity: elements.reduce(16) { $0 + $1.utf8.count + 16 })
        for argument in elements.dropFirst() { append(argument) }
    }

    /// Empties the command and starts a new one named `name`, keeping the
    /// buffer's capacity: the way to encode many commands without allocating.
    package mutating func reset(_ name: String) {
        body.removeAll(keepingCapacity: true)
        storedArgumentCount = 0
        self.name = name
        append(name)
    }

    /// How many arguments the command has, its name included.
    package var argumentCount: Int { storedArgumentCount }

    /// Bytes of encoded arguments so far (the `*N\r\n` header excluded).
    package var encodedByteCount: Int { body.count }

    /// The whole command as RESP bytes (`*N\r\n` and every argument): a copy,
    /// for tests and for tools that feed `redis-cli --pipe`.
    package var encodedBytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(body.count + 24)
        withEncodedHeader { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: body)
        return bytes
    }

    package var description: String {
        "RedisCommand(\(name), \(argumentCount) arguments, \(body.count) bytes)"
    }
}

// MARK: - Appending arguments

extension RedisCommand {
    /// Appends a string argument, as its UTF-8 bytes.
    @inlinable
    package mutating func append(_ string: String) {
        var string = string
        string.withUTF8 { appendBulk($0) }
    }

    /// Appends a substring argument, as its UTF-8 bytes.
    @inlinable
    package mutating func append(_ string: Substring) {
        var string = string
        string.withUTF8 { appendBulk($0) }
    }

    /// Appends an integer argument in decimal (`-42`), formatted on the stack.
    @inlinable
    package mutating func append(_ value: Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: RedisCommand.decimalCapacity) { scratch in
            let start = RedisCommand.formatDecimal(value, into: scratch)
            appendBulk(UnsafeBufferPointer(rebasing: scratch[start...]))
        }
    }

    /// Appends any other integer in decimal.
    @inlinable
    package mutating func append(_ value: some BinaryInteger) {
        if let small = Int(exactly: value) {
            append(small)
        } else {
            append(String(value))
        }
    }

    /// Appends a fixed-point number in decimal: `value / 10^fractionDigits`
    /// with exactly `fractionDigits` decimals. `append(fixedPoint: 73,
    /// fractionDigits: 1)` appends `7.3`; `(100, 1)` is `10.0`, `(5, 1)` is
    /// `0.5`, `(-5, 1)` is `-0.5`, `(7, 0)` is `7`. This is how a score kept in
    /// tenths is written without going through `Double`.
    @inlinable
    package mutating func append(fixedPoint value: Int, fractionDigits: Int) {
        precondition((0...18).contains(fractionDigits), "fractionDigits must be 0...18")
        if fractionDigits == 0 { return append(value) }
        let capacity = RedisCommand.decimalCapacity + fractionDigits + 2
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { scratch in
            // Digits of the magnitude, right-aligned, at least fractionDigits + 1 of them.
            var magnitude = value.magnitude
            var index = capacity
            var written = 0
            repeat {
                if written == fractionDigits {
                    index -= 1
                    scratch[index] = UInt8(ascii: ".")
                }
                index -= 1
                scratch[index] = UInt8(truncatingIfNeeded: magnitude % 10) &+ UInt8(ascii: "0")
                magnitude /= 10
                written += 1
            } while magnitude != 0 || written <= fractionDigits
            if value < 0 {
                index -= 1
                scratch[index] = UInt8(ascii: "-")
            }
            appendBulk(UnsafeBufferPointer(rebasing: scratch[index...]))
        }
    }

    /// Appends raw bytes as one binary-safe argument.
    @inlinable
    package mutating func append(bytes: some Collection<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { appendBulk($0) }
        if done == nil {
            appendBulkHeader(count: bytes.count)
            body.append(contentsOf: bytes)
            body.append(UInt8(ascii: "\r"))
            body.append(UInt8(ascii: "\n"))
            storedArgumentCount += 1
        }
    }

    /// Appends raw bytes as one binary-safe argument.
    @inlinable
    package mutating func append(bytes: UnsafeRawBufferPointer) {
        appendBulk(UnsafeBufferPointer(start: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: bytes.count))
    }
}

// MARK: - Encoding

extension RedisCommand {
    /// Room for any `Int` in decimal: 19 digits and a sign.
    @usableFromInline static var decimalCapacity: Int { 20 }

    /// Writes `value` in decimal at the end of `buffer` (which holds at least
    /// ``decimalCapacity`` bytes) and returns the index of its first byte.
    @inlinable
    static func formatDecimal(_ value: Int, into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var magnitude = value.magnitude
        var index = buffer.count
        repeat {
            index -= 1
            buffer[index] = UInt8(truncatingIfNeeded: magnitude % 10) &+ UInt8(ascii: "0")
            magnitude /= 10
        } while magnitude != 0
        if value < 0 {
            index -= 1
            buffer[index] = UInt8(ascii: "-")
        }
        return index
    }

    /// Appends `<prefix><count>\r\n`.
    @inlinable
    mutating func appendLengthLine(prefix: UInt8, count: Int) {
        body.append(prefix)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: RedisCommand.decimalCapacity) { scratch in
            let start = RedisCommand.formatDecimal(count, into: scratch)
            body.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[start...]))
        }
        body.append(UInt8(ascii: "\r"))
        body.append(UInt8(ascii: "\n"))
    }

    @inlinable
    mutating func appendBulkHeader(count: Int) {
        appendLengthLine(prefix: UInt8(ascii: "$"), count: count)
    }

    /// Appends `$len\r\n<bytes>\r\n` and counts the argument.
    @inlinable
    mutating func appendBulk(_ bytes: UnsafeBufferPointer<UInt8>) {
        appendBulkHeader(count: bytes.count)
        body.append(contentsOf: bytes)
        body.append(UInt8(ascii: "\r"))
        body.append(UInt8(ascii: "\n"))
        storedArgumentCount += 1
    }

    /// Calls `body` with the `*N\r\n` header for this command, formatted on the stack.
    func withEncodedHeader<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: RedisCommand.decimalCapacity + 3) { scratch in
            let digits = UnsafeMutableBufferPointer(rebasing: scratch[0..<RedisCommand.decimalCapacity])
            let start = RedisCommand.formatDecimal(argumentCount, into: digits)
            let headerStart = start - 1
            // formatDecimal right-aligns in `digits`; the '*' goes just before it.
            // argumentCount >= 1 has at most 19 digits, so headerStart >= 0.
            scratch[headerStart] = UInt8(ascii: "*")
            scratch[RedisCommand.decimalCapacity] = UInt8(ascii: "\r")
            scratch[RedisCommand.decimalCapacity + 1] = UInt8(ascii: "\n")
            return try body(UnsafeBufferPointer(rebasing: scratch[headerStart..<(RedisCommand.decimalCapacity + 2)]))
        }
    }

    /// Calls `body` with the encoded arguments (everything after the header).
    func withEncodedBody<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try self.body.withUnsafeBufferPointer(body)
    }
}
