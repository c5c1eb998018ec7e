/// A member id: a positive integer below 2^32 (SCORING.md). Zero is never a member.
public typealias MemberID = UInt32

/// A member's own gender. The raw value is the bit index used in ``GenderSet``.
public enum Gender: UInt8, Sendable, Hashable, CaseIterable {
    case man = 0
    case woman = 1
    case nonbinary = 2

    /// The import-format spelling: `man`, `woman`, `nonbinary`.
    public var name: String {
        switch self {
        case .man: "man"
        case .woman: "woman"
        case .nonbinary: "nonbinary"
        }
    }

    public init?(name: some StringProtocol) {
        switch name {
        case "man": self = .man
        case "woman": self = .woman
        case "nonbinary": self = .nonbinary
        default: return nil
        }
    }
}

/// The genders a member seeks: a set of ``Gender`` stored as three bits.
public struct GenderSet: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue & 0b111 }
    public init(_ gender: Gender) { rawValue = 1 << gender.rawValue }

    public static let man = GenderSet(.man)
    public static let woman = GenderSet(.woman)
    public static let nonbinary = GenderSet(.nonbinary)

    public func contains(_ gender: Gender) -> Bool { rawValue & (1 << gender.rawValue) != 0 }

    /// The members in the fixed order man, woman, nonbinary.
    public var genders: [Gender] { Gender.allCases.filter(contains) }
}

/// How much a member cares about a question (SCORING.md): 0 irrelevant ...
/// 4 mandatory. Mandatory is only the weight 250, never a filter.
public enum Importance: UInt8, Sendable, Hashable, CaseIterable {
    case irrelevant = 0
    case aLittle = 1
    case somewhat = 2
    case very = 3
    case mandatory = 4

    /// `W = [0, 1, 10, 50, 250]`.
    public static let weights: [Int] = [0, 1, 10, 50, 250]

    public var weight: Int { Importance.weights[Int(rawValue)] }
}

/// The options a member accepts from a partner on one question, as a bit set
/// over option numbers `0 ..< 8`.
public struct OptionSet8: Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable
    public init(_ options: some Sequence<Int>) {
        var bits: UInt8 = 0
        for option in options where option >= 0 && option < 8 { bits |= 1 << UInt8(option) }
        rawValue = bits
    }

    /// The options `range.lowerBound ... range.upperBound`, clipped to `0 ..< 8`.
    @inlinable
    public init(range: ClosedRange<Int>) {
        let low = max(range.lowerBound, 0)
        let high = min(range.upperBound, 7)
        rawValue = low > high ? 0 : UInt8(truncatingIfNeeded: (1 << (high + 1)) - (1 << low))
    }
    public func contains(_ option: Int) -> Bool { option >= 0 && option < 8 && rawValue & (1 << UInt8(option)) != 0 }
    public var isEmpty: Bool { rawValue == 0 }
    /// The options in ascending order.
    public var options: [Int] { (0..<8).filter(contains) }
}

/// One answered question: the member's own option, the options they accept
/// from a partner, and how much they care.
public struct Answer: Sendable, Hashable {
    public var question: Int
    public var option: Int
    public var accepted: OptionSet8
    public var importance: Importance

    public init(question: Int, option: Int, accepted: OptionSet8, importance: Importance) {
        self.question = question
        self.option = option
        self.accepted = accepted
        self.importance = importance
    }
}

/// A member as the import format and the member store describe them. A value
/// type with no invariants of its own: ``Survey/validate(_:)`` checks one
/// against the rules of SCORING.md before anything stores or scores it.
public struct Member: Sendable, Hashable {
    public var id: MemberID
    public var gender: Gender
    public var seeking: GenderSet
    public var age: Int
    public var ageMin: Int
    public var ageMax: Int
    /// Seconds since 1970-01-01T00:00:00Z; nil when never active.
    public var lastActive: Int64?
    /// The answered questions; a question not listed was skipped.
    public var answers: [Answer]
    /// Ids this member blocked; they need not exist.
    public var blocked: [MemberID]

    public init(
        id: MemberID, gender: Gender, seeking: GenderSet, age: Int, ageMin: Int, ageMax: Int,
        lastActive: Int64? = nil, answers: [Answer] = [], blocked: [MemberID] = []
    ) {
        self.id = id
        self.gender = gender
        self.seeking = seeking
        self.age = age
        self.ageMin = ageMin
        self.ageMax = ageMax
        self.lastActive = lastActive
        self.answers = answers
        self.blocked = blocked
    }

    /// Valid ages, inclusive (SCORING.md).
    public static let ageRange = 18...120
}
