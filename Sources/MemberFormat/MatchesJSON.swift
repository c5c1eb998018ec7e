import Scoring

/// The JSON documents that carry a member's matches.
package enum MatchesJSON {
    /// `{"member": 17, "matches": [{"id": 4, "score": "7.3"}, ...]}`, in the
    /// order given (callers pass ranked matches), on one line.
    package static func document(member: MemberID, matches: some Collection<Match>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(32 + matches.count * 26)
        out.append(contentsOf: "{\"member\": ".utf8)
        MemberWriter.putInt(Int(member), &out)
        out.append(contentsOf: ", \"matches\": [".utf8)
        var first = true
        for match in matches {
            if !first { out.append(contentsOf: ", ".utf8) }
            first = false
            out.append(contentsOf: "{\"id\": ".utf8)
            MemberWriter.putInt(Int(match.id), &out)
            out.append(contentsOf: ", \"score\": \"".utf8)
            out.append(contentsOf: match.score.utf8)
            out.append(contentsOf: "\"}".utf8)
        }
        out.append(contentsOf: "]}".utf8)
        return String(decoding: out, as: UTF8.self)
    }
}
