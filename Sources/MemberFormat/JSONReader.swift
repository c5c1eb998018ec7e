/// A strict, pull-style JSON reader over one line's bytes (RFC 8259). It
/// reads exactly the shapes the import format needs without building a
/// value tree: the member parser asks for an object, an integer, a string, an
/// array, and skips what it does not know. Errors carry the byte column.
///
/// Keys and short strings are decoded into a caller-owned scratch buffer, so
/// parsing a member allocates only the member itself.
struct JSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    private(set) var position = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// A syntax error at a byte column (1-based).
    struct SyntaxError: Error {
        let column: Int
        let expected: String
        var description: String { "malformed JSON at column \(column): expected \(expected)" }
    }

    enum Token { case object, array, string, number, bool, null, end }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// The kind of the next value, after whitespace.
    mutating func peek() -> Token {
        skipWhitespace()
        guard position < bytes.count else { return .end }
        switch bytes[position] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: return .end
        }
    }

    func error(_ expected: String) -> SyntaxError { SyntaxError(column: position + 1, expected: expected) }

    mutating func expect(_ byte: UInt8, _ what: String) throws(SyntaxError) {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == byte else { throw error(what) }
        position += 1
    }

    /// Reads `{`, then calls `field` with each key with the reader positioned
    /// at the value, which `field` must consume. A key without escapes is
    /// handed out as the line's own bytes; one with escapes is decoded into
    /// `key` first. The bytes are valid only during the call.
    mutating func readObject(
        key: inout [UInt8], _ field: (inout JSONReader, UnsafeBufferPointer<UInt8>) throws(SyntaxError) -> Void
    ) throws(SyntaxError) {
        try expect(UInt8(ascii: "{"), "'{'")
        skipWhitespace()
        if position < bytes.count && bytes[position] == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("a field name") }
            if let raw = readPlainString() {
                try expect(UInt8(ascii: ":"), "':'")
                try field(&self, raw)
            } else {
                try readString(into: &key)
                try expect(UInt8(ascii: ":"), "':'")
                let decoded = key
                try decoded.withUnsafeBufferPointer { (name) throws(SyntaxError) in try field(&self, name) }
            }
            skipWhitespace()
            guard position < bytes.count else { throw error("',' or '}'") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
            } else if bytes[position] == UInt8(ascii: "}") {
                position += 1
                return
            } else {
                throw error("',' or '}'")
            }
        }
    }

    /// Reads `[`, then calls `element` with the index of each element, with
    /// the reader positioned at it; `element` must consume it.
    mutating func readArray(_ element: (inout JSONReader, Int) throws(SyntaxError) -> Void) throws(SyntaxError) {
        try expect(UInt8(ascii: "["), "'['")
        skipWhitespace()
        if position < bytes.count && bytes[position] == UInt8(ascii: "]") {
            position += 1
            return
        }
        var index = 0
        while true {
            try element(&self, index)
            index += 1
            skipWhitespace()
            guard position < bytes.count else { throw error("',' or ']'") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
            } else if bytes[position] == UInt8(ascii: "]") {
                position += 1
                return
            } else {
                throw error("',' or ']'")
            }
        }
    }

    /// A JSON number token, classified. `integer` is set only for a token
    /// without fraction or exponent whose value fits in Int64.
    struct Number {
        var integer: Int64?
        var isInteger: Bool
    }

    mutating func readNumber() throws(SyntaxError) -> Number {
        skipWhitespace()
        let start = position
        var negative = false
        if position < bytes.count && bytes[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        guard position < bytes.count, isDigit(bytes[position]) else { throw error("a number") }
        var magnitude: UInt64 = 0
        var overflow = false
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count && isDigit(bytes[position]) {
                throw SyntaxError(column: start + 1, expected: "a number without leading zeros")
            }
        } else {
            while position < bytes.count && isDigit(bytes[position]) {
                let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (m2, o2) = m1.addingReportingOverflow(UInt64(bytes[position] - UInt8(ascii: "0")))
                overflow = overflow || o1 || o2
                magnitude = m2
                position += 1
            }
        }
        var isInteger = true
        if position < bytes.count && bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("a digit after '.'") }
            while position < bytes.count && isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count && (bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E")) {
            isInteger = false
            position += 1
            if position < bytes.count && (bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")) {
                position += 1
            }
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("a digit in the exponent") }
            while position < bytes.count && isDigit(bytes[position]) { position += 1 }
        }
        guard isInteger, !overflow, magnitude <= UInt64(Int64.max) else {
            return Number(integer: nil, isInteger: isInteger)
        }
        return Number(integer: negative ? -Int64(magnitude) : Int64(magnitude), isInteger: true)
    }

    /// The fast path for strings: when the string at `position` has no
    /// escape and no control character, consumes it and returns its bytes
    /// (within the line); otherwise returns nil and consumes nothing.
    mutating func readPlainString() -> UnsafeBufferPointer<UInt8>? {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { return nil }
        var end = position + 1
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "\"") {
                let result = UnsafeBufferPointer(rebasing: bytes[(position + 1)..<end])
                position = end + 1
                return result
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
            end += 1
        }
        return nil
    }

    /// Reads a string, decoding escapes (including surrogate pairs) into
    /// `buffer` as UTF-8. Control characters inside strings are errors.
    mutating func readString(into buffer: inout [UInt8]) throws(SyntaxError) {
        skipWhitespace()
        buffer.removeAll(keepingCapacity: true)
        if let plain = readPlainString() {
            buffer.append(contentsOf: plain)
            return
        }
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("a string") }
        position += 1
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { throw error("an escape") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(escape)
                case UInt8(ascii: "b"): buffer.append(0x08)
                case UInt8(ascii: "f"): buffer.append(0x0C)
                case UInt8(ascii: "n"): buffer.append(0x0A)
                case UInt8(ascii: "r"): buffer.append(0x0D)
                case UInt8(ascii: "t"): buffer.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try readHex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                            bytes[position + 1] == UInt8(ascii: "u")
                        else { throw error("a low surrogate") }
                        position += 2
                        let low = try readHex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("a low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw error("a high surrogate before a low one")
                    }
                    appendUTF8(scalar, to: &buffer)
                default:
                    throw SyntaxError(column: position, expected: "a valid escape")
                }
            case 0..<0x20:
                throw SyntaxError(column: position, expected: "no control characters in strings")
            default:
                buffer.append(byte)
            }
        }
        throw error("a closing '\"'")
    }

    /// Reads `true`, `false` or `null`.
    mutating func readLiteral() throws(SyntaxError) -> Token {
        skipWhitespace()
        for (word, token) in [("true", Token.bool), ("false", .bool), ("null", .null)] {
            let utf8 = word.utf8
            if position + utf8.count <= bytes.count,
                utf8.elementsEqual(bytes[position..<position + utf8.count])
            {
                position += utf8.count
                return token
            }
        }
        throw error("a value")
    }

    /// Consumes any value.
    mutating func skipValue(scratch: inout [UInt8]) throws(SyntaxError) {
        switch peek() {
        case .object:
            var inner: [UInt8] = []
            try readObject(key: &scratch) { (reader: inout JSONReader, _) throws(SyntaxError) in
                try reader.skipValue(scratch: &inner)
            }
        case .array:
            try readArray { (reader: inout JSONReader, _) throws(SyntaxError) in
                try reader.skipValue(scratch: &scratch)
            }
        case .string: try readString(into: &scratch)
        case .number: _ = try readNumber()
        case .bool, .null: _ = try readLiteral()
        case .end: throw error("a value")
        }
    }

    /// After the top-level value: only whitespace may follow.
    mutating func expectEnd() throws(SyntaxError) {
        skipWhitespace()
        if position != bytes.count { throw error("end of line") }
    }

    private mutating func readHex4() throws(SyntaxError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("four hex digits")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private func appendUTF8(_ scalar: UInt32, to buffer: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            buffer.append(UInt8(scalar))
        case 0x80..<0x800:
            buffer.append(UInt8(0xC0 | scalar >> 6))
            buffer.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            buffer.append(UInt8(0xE0 | scalar >> 12))
            buffer.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
            buffer.append(UInt8(0x80 | scalar & 0x3F))
        default:
            buffer.append(UInt8(0xF0 | scalar >> 18))
            buffer.append(UInt8(0x80 | (scalar >> 12) & 0x3F))
            buffer.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
            buffer.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    @inline(__always)
    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
