import Hummingbird
import Scoring

/// A small JSON writer into a `ByteBuffer`: the API's documents are a few
/// fixed shapes, written directly (no reflection, no intermediate
/// dictionaries) because a page of matches is on the hot path.
struct JSONOutput {
    var buffer: ByteBuffer

    init(capacity: Int = 256) {
        buffer = ByteBuffer()
        buffer.reserveCapacity(capacity)
    }

    mutating func raw(_ text: StaticString) {
        buffer.writeStaticString(text)
    }

    mutating func int(_ value: some BinaryInteger) {
        if let unsigned = UInt64(exactly: value) {
            unsignedDecimal(unsigned)
        } else {
            buffer.writeString(String(value))
        }
    }

    /// Digits straight into the buffer: no intermediate string.
    mutating func unsignedDecimal(_ value: UInt64) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 20) { out in
            var digits = 1
            var rest = value / 10
            while rest > 0 {
                digits += 1
                rest /= 10
            }
            var number = value
            for index in stride(from: digits - 1, through: 0, by: -1) {
                out[index] = UInt8(ascii: "0") + UInt8(number % 10)
                number /= 10
            }
            return digits
        }
    }

    /// A score in tenths as SCORING.md writes it: `"7.3"`, `"10.0"`.
    mutating func score(_ tenths: Int) {
        if tenths >= 100 {
            buffer.writeStaticString("\"10.0\"")
            return
        }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 5) { out in
            out[0] = UInt8(ascii: "\"")
            out[1] = UInt8(ascii: "0") + UInt8(max(0, tenths) / 10)
            out[2] = UInt8(ascii: ".")
            out[3] = UInt8(ascii: "0") + UInt8(max(0, tenths) % 10)
            out[4] = UInt8(ascii: "\"")
            return 5
        }
    }

    /// `{"id":4,"score":"7.3"},...` for a list of matches, written in one
    /// reservation (a page is the hot path's whole output).
    mutating func matches(_ matches: [Match]) {
        guard !matches.isEmpty else { return }
        // `,{"id":4294967295,"score":"10.0"}` is the longest entry: 34 bytes.
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: matches.count * 34) { out in
            var at = 0
            @inline(__always) func put(_ text: StaticString) {
                text.withUTF8Buffer { bytes in
                    for byte in bytes {
                        out[at] = byte
                        at += 1
                    }
                }
            }
            for (index, match) in matches.enumerated() {
                put(index == 0 ? "{\"id\":" : ",{\"id\":")
                var digits = 1
                var rest = match.id / 10
                while rest > 0 {
                    digits += 1
                    rest /= 10
                }
                var number = match.id
                for position in stride(from: at + digits - 1, through: at, by: -1) {
                    out[position] = UInt8(ascii: "0") + UInt8(number % 10)
                    number /= 10
                }
                at += digits
                let tenths = min(100, max(0, Int(match.tenths)))
                if tenths == 100 {
                    put(",\"score\":\"10.0\"}")
                } else {
                    put(",\"score\":\"")
                    out[at] = UInt8(ascii: "0") + UInt8(tenths / 10)
                    out[at + 1] = UInt8(ascii: ".")
                    out[at + 2] = UInt8(ascii: "0") + UInt8(tenths % 10)
                    at += 3
                    put("\"}")
                }
            }
            return at
        }
    }

    mutating func bool(_ value: Bool) {
        buffer.writeStaticString(value ? "true" : "false")
    }

    /// A JSON string with the escapes RFC 8259 requires.
    mutating func string(_ text: String) {
        buffer.writeInteger(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
            case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
            case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0xF)])
            default: buffer.writeInteger(byte)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    func response(status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: buffer))
    }
}
