import KindredCore
import MemberFormat
import MemberStore
import Scoring

/// A selection the operator gave that cannot be used, with the reason.
package struct SelectionError: Error, Sendable, CustomStringConvertible, Hashable {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// Durations and instants as `kindred backfill` and `kindred evict` take them.
package enum RunText {
    /// Seconds in a duration like `90d`, `12h`, `2w`, `30m`, `45s`, or a
    /// sum of them (`1w2d`, `1d12h`): a whole number before each unit.
    /// Units: `s`, `m` (minutes), `h`, `d` (86,400 s: days are counted in
    /// seconds, whatever the calendar), `w` (7 days). Zero is allowed;
    /// at most 100 years.
    package static func seconds(in text: String) throws(SelectionError) -> Int64 {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800]
        var total: Int64 = 0
        var number: Int64?
        var sawUnit = false
        for character in text {
            if let digit = character.wholeNumberValue, character.isASCII {
                let (value, overflow) = (number ?? 0).multipliedReportingOverflow(by: 10)
                guard !overflow, value <= 1_000_000_000_000 else { throw SelectionError("duration \(text) is too long") }
                number = value + Int64(digit)
            } else if let unit = units[character] {
                guard let value = number else {
                    throw SelectionError("duration \(text): expected a whole number before \(character) (like 90d, 12h, 2w)")
                }
                total += value * unit
                guard total <= maximumSeconds else { throw SelectionError("duration \(text) is longer than 100 years") }
                number = nil
                sawUnit = true
            } else {
                throw SelectionError("duration \(text): expected a number and a unit s, m, h, d or w (like 90d, 12h, 2w)")
            }
        }
        guard sawUnit, number == nil else {
            throw SelectionError("duration \(text): expected a number and a unit s, m, h, d or w (like 90d, 12h, 2w)")
        }
        return total
    }

    static let maximumSeconds: Int64 = 100 * 366 * 86_400

    /// Unix seconds of `2026-08-01` (midnight UTC) or an RFC 3339 UTC
    /// timestamp (`2026-08-01T12:00:00Z`).
    package static func instant(_ text: String) throws(SelectionError) -> Int64 {
        if text.utf8.count == 10, let seconds = Timestamp.parse(text + "T00:00:00Z") { return seconds }
        if let seconds = Timestamp.parse(text) { return seconds }
        throw SelectionError("\(text) is not a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 UTC timestamp (2026-08-01T12:00:00Z)")
    }

    /// A duration in the largest unit that divides it (`7776000` -> `90d`).
    package static func duration(_ seconds: Int64) -> String {
        for (unit, size) in [("w", Int64(604_800)), ("d", 86_400), ("h", 3_600), ("m", 60)] where seconds > 0 && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}

/// Which members a run selects, as the operator gave it: windows are
/// relative to "now", which is fixed when the run starts (`--now`, or the
/// clock) and kept by the checkpoint, so a resumed run selects the same
/// members however late it resumes.
///
/// The windows, for `last_active` (Unix seconds) and the run's `now`:
/// - `--active-within D`: `last_active >= now - D` (the boundary instant
///   is inside);
/// - `--since T`: `last_active >= T` (inclusive);
/// - `--dormant-for D`: `last_active < now - D` (the boundary instant is
///   outside: a member active exactly D ago is not dormant for D), and
///   members never active;
/// - one of the first two with `--dormant-for`: both bounds, never-active
///   members excluded; an empty window is refused;
/// - `--ids FILE`: exactly those members; `--all`: every live member.
/// So `--active-within D` and `--dormant-for D` split the population in two
/// with nobody in both.
package struct RunSelection: Sendable, Hashable {
    package var activeWithin: Int64?
    package var since: Int64?
    package var dormantFor: Int64?
    /// Sorted, unique.
    package var ids: [MemberID]?
    package var all: Bool
    /// `--now`, when given: part of the key (a run started with an explicit
    /// now resumes only with the same one).
    package var explicitNow: Int64?

    package init(
        activeWithin: Int64? = nil, since: Int64? = nil, dormantFor: Int64? = nil, ids: [MemberID]? = nil,
        all: Bool = false, explicitNow: Int64? = nil
    ) {
        self.activeWithin = activeWithin
        self.since = since
        self.dormantFor = dormantFor
        self.ids = ids.map { Array(Set($0)).sorted() }
        self.all = all
        self.explicitNow = explicitNow
    }

    /// Refuses combinations that do not make one window.
    package func validate() throws(SelectionError) {
        if activeWithin != nil && since != nil {
            throw SelectionError("give --active-within or --since, not both")
        }
        let windowGiven = activeWithin != nil || since != nil || dormantFor != nil
        if let ids {
            if windowGiven || all { throw SelectionError("--ids selects members by id: give no window and no --all with it") }
            if ids.isEmpty { throw SelectionError("the --ids file lists no member") }
            if ids.contains(0) { throw SelectionError("member ids are positive integers below 2^32") }
        } else if all {
            if windowGiven { throw SelectionError("--all selects every member: give no window with it") }
        } else if !windowGiven {
            throw SelectionError("select members with --active-within, --since, --dormant-for, --ids or --all")
        }
    }

    /// What identifies "the same selection": durations in seconds, instants
    /// in Unix seconds, an id list by count and digest. Two spellings of one
    /// window (`90d`, `2160h`) have the same key.
    package var key: String {
        var parts: [String] = []
        if let activeWithin { parts.append("active-within=\(activeWithin)") }
        if let since { parts.append("since=\(since)") }
        if let dormantFor { parts.append("dormant-for=\(dormantFor)") }
        if let ids { parts.append("ids=\(ids.count):\(Self.digest(ids))") }
        if all { parts.append("all") }
        if let explicitNow { parts.append("now=\(explicitNow)") }
        return parts.joined(separator: ";")
    }

    func lowerBound(now: Int64) -> Int64? { activeWithin.map { now - $0 } ?? since }
    func upperBound(now: Int64) -> Int64? { dormantFor.map { now - $0 } }

    /// The members this selects at `now`.
    /// - Throws: when both bounds are given and the window between them is empty.
    package func members(now: Int64) throws(SelectionError) -> MemberSelection {
        if let ids { return .ids(ids) }
        let from = lowerBound(now: now)
        let before = upperBound(now: now)
        if let from, let before, from >= before {
            throw SelectionError(
                "the window is empty: last active at or after \(Timestamp.format(from)) and before \(Timestamp.format(before))")
        }
        return .activity(from: from, before: before)
    }

    /// The selection for people, with its exact bounds.
    package func describe(now: Int64) -> String {
        if let ids { return "\(ids.count) member id(s) from a file" }
        if all { return "every live member" }
        let from = lowerBound(now: now)
        let before = upperBound(now: now)
        var given: [String] = []
        if let activeWithin { given.append("active within \(RunText.duration(activeWithin))") }
        if let since { given.append("active since \(Timestamp.format(since))") }
        if let dormantFor { given.append("dormant for \(RunText.duration(dormantFor))") }
        var bounds: [String] = []
        if let from { bounds.append("last active at or after \(Timestamp.format(from))") }
        if let before { bounds.append((from == nil ? "last active before " : "and before ") + Timestamp.format(before)) }
        if from == nil { bounds.append("or never active") }
        return given.joined(separator: ", ") + " (" + bounds.joined(separator: " ") + "; now \(Timestamp.format(now)))"
    }

    /// FNV-1a over the ids' bytes, as 16 hex digits.
    static func digest(_ ids: [MemberID]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for id in ids {
            var value = id
            for _ in 0..<4 {
                hash ^= UInt64(value & 0xFF)
                hash = hash &* 0x100_0000_01b3
                value >>= 8
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
