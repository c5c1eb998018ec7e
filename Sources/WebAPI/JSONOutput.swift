import Hummingbird

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
        buffer.writeString(String(value))
    }

    /// A score in tenths as SCORING.md writes it: `"7.3"`, `"10.0"`.
    mutating func score(_ tenths: Int) {
        buffer.writeInteger(UInt8(ascii: "\""))
        if tenths >= 100 {
            buffer.writeStaticString("10.0")
        } else {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(tenths / 10))
            buffer.writeInteger(UInt8(ascii: "."))
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(tenths % 10))
        }
        buffer.writeInteger(UInt8(ascii: "\""))
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
