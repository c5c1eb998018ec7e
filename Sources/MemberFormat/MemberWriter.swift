import Scoring

/// Writes members in the import format, one JSON object per line, fields in
/// SCORING.md's order. Appends bytes to a caller-owned buffer, so writing a
/// million members allocates only as the buffer grows.
package enum MemberWriter {
    package static func line(_ member: Member) -> String {
        var bytes: [UInt8] = []
        append(member, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `member` as one line, with its newline.
    package static func append(_ member: Member, to out: inout [UInt8]) {
        put("{\"id\":", &out)
        putInt(Int(member.id), &out)
        put(",\"gender\":\"", &out)
        put(name(member.gender), &out)
        put("\",\"seeking\":[", &out)
        var first = true
        for gender in member.seeking.genders {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "\""))
            put(name(gender), &out)
            out.append(UInt8(ascii: "\""))
        }
        put("],\"age\":", &out)
        putInt(member.age, &out)
        put(",\"age_min\":", &out)
        putInt(member.ageMin, &out)
        put(",\"age_max\":", &out)
        putInt(member.ageMax, &out)
        if let lastActive = member.lastActive {
            put(",\"last_active\":\"", &out)
            Timestamp.append(lastActive, to: &out)
            out.append(UInt8(ascii: "\""))
        }
        put(",\"answers\":[", &out)
        for (index, answer) in member.answers.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            put("{\"q\":", &out)
            putInt(answer.question, &out)
            put(",\"answer\":", &out)
            putInt(answer.option, &out)
            put(",\"accept\":[", &out)
            var bits = answer.accepted.rawValue
            var firstOption = true
            while bits != 0 {
                if !firstOption { out.append(UInt8(ascii: ",")) }
                firstOption = false
                out.append(UInt8(ascii: "0") + UInt8(bits.trailingZeroBitCount))
                bits &= bits - 1
            }
            put("],\"importance\":", &out)
            out.append(UInt8(ascii: "0") + answer.importance.rawValue)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
        if !member.blocked.isEmpty {
            put(",\"blocked\":[", &out)
            for (index, id) in member.blocked.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                putInt(Int(id), &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        put("}\n", &out)
    }

    @inline(__always)
    private static func put(_ text: StaticString, _ out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private static func name(_ gender: Gender) -> StaticString {
        switch gender {
        case .man: "man"
        case .woman: "woman"
        case .nonbinary: "nonbinary"
        }
    }

    /// Appends a non-negative integer in decimal.
    @inline(__always)
    static func putInt(_ value: Int, _ out: inout [UInt8]) {
        if value < 10 {
            out.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 {
                d[count] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                count += 1
            }
            for i in stride(from: count - 1, through: 0, by: -1) { out.append(d[i]) }
        }
    }
}
