extension FilterWord {
    /// SCORING.md's mutual filters 2 and 3 (genders sought both ways, ages
    /// within both ranges) between two live filter words.
    @inline(__always)
    static func mutuallyCompatible(_ a: UInt32, _ b: UInt32) -> Bool {
        let aGender = a & 0b111, bGender = b & 0b111
        let aSeeks = (a >> 4) & 0b111, bSeeks = (b >> 4) & 0b111
        guard aSeeks & bGender != 0, bSeeks & aGender != 0 else { return false }
        let aAge = (a >> 8) & 0x7F, bAge = (b >> 8) & 0x7F
        return (a >> 16) & 0x7F <= bAge && bAge <= (a >> 24) & 0x7F
            && (b >> 16) & 0x7F <= aAge && aAge <= (b >> 24) & 0x7F
    }
}

/// Whether members pass the mutual hard filters with one member, as a
/// ``Population`` holds them now: the readers' check that a served entry is
/// still a candidate (SCORING.md, "Matches while the population changes").
///
/// Bound to the population it came from: use it only while that population
/// is not written (under the same read lock).
public struct HardFilterCheck {
    let population: Population
    let word: UInt32
    let id: MemberID
    /// Everyone in a block with the member (either way), sorted.
    let partners: [MemberID]

    /// True when `other` is a live member other than this one, both seek
    /// each other's gender, both ages are in the other's range, and neither
    /// blocked the other. The score itself (filter 5) is not checked.
    public func passes(_ other: MemberID) -> Bool {
        guard other != id, let slot = population.slot(of: other) else { return false }
        guard FilterWord.mutuallyCompatible(word, population.filters[slot]) else { return false }
        return partners.isEmpty || !Self.contains(partners, other)
    }

    private static func contains(_ sorted: [MemberID], _ value: MemberID) -> Bool {
        var low = 0
        var high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low < sorted.count && sorted[low] == value
    }
}

extension Population {
    /// A check of the mutual hard filters against live member `id`; nil when
    /// `id` is not live.
    public func hardFilterCheck(for id: MemberID) -> HardFilterCheck? {
        guard let slot = slot(of: id) else { return nil }
        return HardFilterCheck(
            population: self, word: filters[slot], id: id, partners: blockPartners(of: id, blocked: blockedIDs(of: id)))
    }
}
