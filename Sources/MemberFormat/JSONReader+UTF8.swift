/// Strict UTF-8 (RFC 3629, the Unicode standard's table 3-7) for the
/// strings and keys of a document: a byte sequence that is not the shortest
/// encoding of a scalar value is refused, so are overlong forms
/// (`C0 80`), the UTF-16 surrogates D800-DFFF encoded as three bytes
/// (`ED A0 80`), anything past U+10FFFF (`F4 90 ..`, `F5`-`FF`), stray
/// continuation bytes and sequences cut short.
///
/// Cost: callers reach this only for strings that hold a byte >= 0x80; the
/// loop then walks ASCII a byte at a time and decodes each multi-byte
/// sequence with one switch on its lead byte.
extension JSONReader {
    /// Throws ``SyntaxError/Problem/invalidUTF8`` at the column of the first
    /// byte of the first invalid sequence in `range`.
    func validateUTF8(_ range: Range<Int>) throws(SyntaxError) {
        var index = range.lowerBound
        while index < range.upperBound {
            if bytes[index] < 0x80 {
                index += 1
                continue
            }
            guard let length = Self.utf8SequenceLength(bytes, at: index), index + length <= range.upperBound else {
                throw SyntaxError(column: index + 1, .invalidUTF8)
            }
            index += length
        }
    }

    /// The length (2 to 4) of the well-formed multi-byte sequence that
    /// starts at `index`, or nil when it is not one. `bytes[index]` must be
    /// >= 0x80.
    @inline(__always)
    static func utf8SequenceLength(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Int? {
        let count = bytes.count
        @inline(__always) func byte(_ offset: Int, in range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
            index + offset < count && range.contains(bytes[index + offset])
        }
        switch bytes[index] {
        case 0xC2...0xDF:
            return byte(1) ? 2 : nil
        case 0xE0:
            return byte(1, in: 0xA0...0xBF) && byte(2) ? 3 : nil
        case 0xE1...0xEC, 0xEE...0xEF:
            return byte(1) && byte(2) ? 3 : nil
        case 0xED:
            return byte(1, in: 0x80...0x9F) && byte(2) ? 3 : nil
        case 0xF0:
            return byte(1, in: 0x90...0xBF) && byte(2) && byte(3) ? 4 : nil
        case 0xF1...0xF3:
            return byte(1) && byte(2) && byte(3) ? 4 : nil
        case 0xF4:
            return byte(1, in: 0x80...0x8F) && byte(2) && byte(3) ? 4 : nil
        default:
            return nil  // a continuation byte, C0/C1 (always overlong), F5-FF
        }
    }
}
