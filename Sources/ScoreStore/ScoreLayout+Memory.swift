import Scoring

/// What a stored set costs a Redis 7 shard, derived from the layout rather
/// than guessed, so that a backfill can refuse before it writes sets that
/// would not fit a shard's memory budget.
///
/// The model, per bucket hash (``ScoreLayout``):
/// - the key: a dict entry (24 bytes, allocated as 32), the value object
///   (16), the key's sds (3-byte header + name + NUL, rounded to an
///   allocator size class) and its slot in the keyspace table (8 bytes,
///   the table being 1-2x the key count: 12 on average);
/// - the value, while a bucket holds at most ``listpackEntryLimit``
///   fields: one listpack (6-byte header, 1-byte terminator) whose entries
///   are the field and the value. A member id is stored as an integer
///   (``listpackIntegerBytes(_:)``); a score like `"7.3"` as a short
///   string (1-byte header, the text, 1-byte back length). The allocation
///   is rounded up to jemalloc's size class;
/// - past the limit, a hashtable: per field a dict entry (32), two sds
///   (rounded) and a table slot.
/// Plus the meta hash (a small listpack) once per set.
///
/// Checked against the server (`MemoryEstimateTests`, redis 7.0, 40 sets
/// written, `used_memory` before and after): at B = 64 and N = 5000 the
/// model gives 12.7 bytes a score where the shard grew by 12.1 (5% over,
/// the safe side for a budget; `kindred-bench score-store` measured 12.2);
/// for sets of 400 (buckets of ~6 fields, where the per-key cost dominates)
/// 28.3 against 29.2.
extension ScoreLayout {
    /// Redis's default `hash-max-listpack-entries`.
    package static let listpackEntryLimit = 512

    /// The estimated bytes on its shard of one member's set of `count`
    /// matches, for members whose ids are at most `largestID`.
    package func estimatedBytes(ofSetWith count: Int, largestID: MemberID) -> Int {
        precondition(count >= 0, "a set holds zero or more matches")
        let idBytes = Self.listpackIntegerBytes(Int64(largestID))
        // Scores are "0.0" ... "9.9" (3 characters) or "10.0"; 3 on average.
        let scoreBytes = 1 + 3 + 1
        let member = Int64(largestID)
        var total = metaBytes(member)
        guard count > 0 else { return total }
        if buckets == 1 {
            total += keyBytes(nameLength: prefix(MemberID(truncatingIfNeeded: member)).utf8.count)
            total += valueBytes(entries: count, idBytes: idBytes, scoreBytes: scoreBytes)
            return total
        }
        let perBucket = count / buckets
        let remainder = count % buckets
        let nameLength = liveKey(MemberID(truncatingIfNeeded: member), bucket: buckets - 1).utf8.count
        for bucket in 0..<min(buckets, count) {
            let entries = perBucket + (bucket < remainder ? 1 : 0)
            total += keyBytes(nameLength: nameLength) + valueBytes(entries: entries, idBytes: idBytes, scoreBytes: scoreBytes)
        }
        return total
    }

    /// Bytes per stored score of a set of `count` matches (the figure
    /// BENCHMARKS.md reports).
    package func estimatedBytesPerScore(setSize count: Int, largestID: MemberID) -> Double {
        guard count > 0 else { return 0 }
        return Double(estimatedBytes(ofSetWith: count, largestID: largestID)) / Double(count)
    }

    /// A key's fixed cost: dict entry, value object, name sds, table slot.
    func keyBytes(nameLength: Int) -> Int {
        Self.allocation(24) + Self.allocation(16) + Self.allocation(3 + nameLength + 1) + 12
    }

    func valueBytes(entries: Int, idBytes: Int, scoreBytes: Int) -> Int {
        if entries <= Self.listpackEntryLimit {
            return Self.allocation(6 + entries * (idBytes + scoreBytes) + 1)
        }
        // Hashtable: entry, field sds, value sds, slot (table at 1-2x: 12 on average).
        let fieldSDS = Self.allocation(3 + 10 + 1)
        let valueSDS = Self.allocation(3 + 4 + 1)
        return Self.allocation(56) + entries * (Self.allocation(24) + fieldSDS + valueSDS + 12)
    }

    /// The meta hash: six short fields (answers version, generated at, count, limit, floor, changes).
    func metaBytes(_ member: Int64) -> Int {
        keyBytes(nameLength: metaKey(MemberID(truncatingIfNeeded: member)).utf8.count) + Self.allocation(6 + 12 * 16 + 1)
    }

    /// Bytes a listpack entry holding the integer `value` takes, back length included.
    package static func listpackIntegerBytes(_ value: Int64) -> Int {
        switch value {
        case 0...127: return 1 + 1
        case -4096...4095: return 2 + 1
        case -32768...32767: return 3 + 1
        case -8_388_608...8_388_607: return 4 + 1
        case -2_147_483_648...2_147_483_647: return 5 + 1
        default: return 9 + 1
        }
    }

    /// jemalloc's size class for a request of `bytes`: 8, then multiples
    /// of 16 to 128, then four classes per doubling (160, 192, 224, 256,
    /// 320, ...). Redis's `used_memory` counts these usable sizes.
    package static func allocation(_ bytes: Int) -> Int {
        if bytes <= 8 { return 8 }
        if bytes <= 128 { return (bytes + 15) / 16 * 16 }
        let power = Int.bitWidth - 1 - (bytes - 1).leadingZeroBitCount  // 2^power < bytes <= 2^(power+1)
        let spacing = 1 << (power - 2)
        return (bytes + spacing - 1) / spacing * spacing
    }
}
