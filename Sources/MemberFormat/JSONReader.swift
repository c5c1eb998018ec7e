/// A strict, pull-style JSON reader over one line's bytes (RFC 8259). It
/// reads exactly the shapes the import format needs without building a
/// value tree: the member parser asks for an object, an integer, a string, an
/// array, and skips what it does not know. Errors carry the byte column.
///
/// Keys and short strings are decoded into a caller-owned scratch buffer, so
/// parsing a member allocates only the member itself.
///
/// Hostile input: every string and key must be strict UTF-8 (see
/// `JSONReader+UTF8.swift`), and values nest at most ``maxDepth`` levels,
/// counted over the whole document (the objects and arrays the caller reads
/// and those ``skipValue(scratch:)`` skips alike). Skipping is iterative, so
/// no input, however deep, grows the stack: a document nested 150,000 levels
/// deep is an error at the column of its 65th opening bracket.
struct JSONReader {
    /// The deepest nesting accepted. A member line needs 4 levels
    /// (`{"answers": [{"accept": [`); 64 leaves room for any sane unknown
    /// field. At most 64: ``skipValue(scratch:)`` keeps one bit per level.
    static let maxDepth = 64

    let bytes: UnsafeBufferPointer<UInt8>
    private(set) var position = 0
    /// Objects and arrays open around `position` (read by the caller).
    private(set) var depth = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// A syntax error at a byte column (1-based). The description names the
    /// problem and the column, never the bytes there (they may be member data).
    struct SyntaxError: Error {
        enum Problem {
            case expected(String)
            case tooDeep
            case invalidUTF8
        }
        let column: Int
        let problem: Problem

        init(column: Int, expected: String) {
            self.column = column
            self.problem = .expected(expected)
        }

        init(column: Int, _ problem: Problem) {
            self.column = column
            self.problem = problem
        }

        var description: String {
            switch problem {
            case .expected(let what): "malformed JSON at column \(column): expected \(what)"
            case .tooDeep: "nested deeper than \(JSONReader.maxDepth) levels at column \(column)"
            case .invalidUTF8: "invalid UTF-8 at column \(column)"
            }
        }
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
        try enterContainer()
        defer { depth -= 1 }
        skipWhitespace()
        if position < bytes.count && bytes[position] == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("a field name") }
            if let raw = try readPlainString() {
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

    /// Counts the container whose opening bracket was just consumed.
    private mutating func enterContainer() throws(SyntaxError) {
        guard depth < Self.maxDepth else { throw SyntaxError(column: position, .tooDeep) }
        depth += 1
    }

    /// Reads `[`, then calls `element` with the index of each element, with
    /// the reader positioned at it; `element` must consume it.
    mutating func readArray(_ element: (inout JSONReader, Int) throws(SyntaxError) -> Void) throws(SyntaxError) {
        try expect(UInt8(ascii: "["), "'['")
        try enterContainer()
        defer { depth -= 1 }
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
    /// (within the line); otherwise returns nil and consumes nothing. The
    /// bytes are checked to be UTF-8 only when one of them is not ASCII (an
    /// OR per byte decides), so ASCII strings cost no more than before.
    mutating func readPlainString() throws(SyntaxError) -> UnsafeBufferPointer<UInt8>? {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { return nil }
        var end = position + 1
        var seen: UInt8 = 0
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "\"") {
                if seen >= 0x80 { try validateUTF8(position + 1..<end) }
                let result = UnsafeBufferPointer(rebasing: bytes[(position + 1)..<end])
                position = end + 1
                return result
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
            seen |= byte
            end += 1
        }
        return nil
    }

    /// Reads a string, decoding escapes (including surrogate pairs) into
    /// `buffer` as UTF-8. Control characters inside strings are errors.
    mutating func readString(into buffer: inout [UInt8]) throws(SyntaxError) {
        skipWhitespace()
        buffer.removeAll(keepingCapacity: true)
        if let plain = try readPlainString() {
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
            case 0x80...:
                let start = position - 1
                guard let length = Self.utf8SequenceLength(bytes, at: start) else {
                    throw SyntaxError(column: start + 1, .invalidUTF8)
                }
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<start + length]))
                position = start + length
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

    /// Consumes any value, checking it as strictly as the rest (syntax,
    /// UTF-8, depth). Iterative: the containers it is inside are one bit
    /// each in `objects` (1 for an object, innermost lowest), so the stack
    /// does not grow with the input's nesting.
    mutating func skipValue(scratch: inout [UInt8]) throws(SyntaxError) {
        var objects: UInt64 = 0
        var open = 0
        while true {
            // A value starts here.
            switch peek() {
            case .object, .array:
                let isObject = bytes[position] == UInt8(ascii: "{")
                guard depth + open < Self.maxDepth else { throw SyntaxError(column: position + 1, .tooDeep) }
                position += 1
                skipWhitespace()
                if position < bytes.count && bytes[position] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    position += 1  // empty: the value is complete
                } else {
                    objects = objects << 1 | (isObject ? 1 : 0)
                    open += 1
                    if isObject { try skipKey(scratch: &scratch) }
                    continue
                }
            case .string: try readString(into: &scratch)
            case .number: _ = try readNumber()
            case .bool, .null: _ = try readLiteral()
            case .end: throw error("a value")
            }
            // A value ended: close the containers it completes, or move on
            // to the next element of the innermost one.
            while open > 0 {
                skipWhitespace()
                let inObject = objects & 1 == 1
                let close = inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                guard position < bytes.count else { throw error(inObject ? "',' or '}'" : "',' or ']'") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                    if inObject { try skipKey(scratch: &scratch) }
                    break
                } else if bytes[position] == close {
                    position += 1
                    objects >>= 1
                    open -= 1
                } else {
                    throw error(inObject ? "',' or '}'" : "',' or ']'")
                }
            }
            if open == 0 { return }
        }
    }

    /// A field name and its `:`, inside an object being skipped.
    private mutating func skipKey(scratch: inout [UInt8]) throws(SyntaxError) {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("a field name") }
        try readString(into: &scratch)
        try expect(UInt8(ascii: ":"), "':'")
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
