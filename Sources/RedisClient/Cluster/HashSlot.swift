/// One of a Redis Cluster's 16,384 hash slots: where a key lives.
///
/// The slot is CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the
/// key modulo 16,384, or of the key's hash tag when it has one: the bytes
/// between the first `{` and the first `}` after it, when there is at
/// least one. Every key of a Kindred member carries the `{id}` tag, so a
/// member's buckets, meta and change log share one slot, and a script over
/// them runs on one node.
package struct HashSlot: Sendable, Hashable, Comparable, CustomStringConvertible {
    package static let count = 16_384

    /// 0 ..< 16,384.
    package let value: Int

    /// The slot numbered `value`; nil outside 0 ..< 16,384.
    package init?(_ value: Int) {
        guard (0..<Self.count).contains(value) else { return nil }
        self.value = value
    }

    /// The slot of a key given as bytes.
    package init(key: some Collection<UInt8>) {
        let bytes = Array(key)
        value = Int(Self.crc16(Self.hashedPart(of: bytes)) % UInt16(Self.count))
    }

    /// The slot of a key (its UTF-8 bytes).
    package init(key: String) {
        self.init(key: Array(key.utf8))
    }

    package static func < (lhs: HashSlot, rhs: HashSlot) -> Bool { lhs.value < rhs.value }

    package var description: String { String(value) }

    /// The hash tag when the key has a non-empty one, else the whole key.
    static func hashedPart(of key: [UInt8]) -> ArraySlice<UInt8> {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")),
            close > open + 1
        else { return key[...] }
        return key[(open + 1)..<close]
    }

    /// CRC16-CCITT (XMODEM), as Redis Cluster computes it.
    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
