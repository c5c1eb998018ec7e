/// The candidate population in memory, laid out for the scoring scan: a
/// struct of arrays, one contiguous buffer per field, indexed by slot.
///
/// - `filters`: the packed hard-filter word (``FilterWord``), 4 bytes a slot.
/// - `rows`: the answer bytes (``AnswerRow``), `rowStride` bytes a slot, read
///   only for candidates that pass the filters.
/// - `ids`, `lastActive`: 4 and 8 bytes a slot.
/// - blocks as two sparse maps (who a member blocked, who blocked a member).
///
/// **Order.** Slots `0 ..< sortedCount` are sorted by cohort: (gender,
/// seeking) class, then age, and within a cohort by `age_min`. A member's candidates are in the classes whose
/// gender they seek and who seek their gender, within their age range: for
/// each such class, one contiguous run of slots. The scan streams through
/// those runs (hardware prefetchers follow them) instead of touching rows
/// scattered over the whole population. Members added or moved to another
/// cohort since the last ``organize()`` live in an unsorted tail
/// (`sortedCount ..< slotCount`) that every scan filters in full; removed
/// members leave holes (filter word 0, which no one seeks). ``organize()``
/// sorts everything again; ``organizeIfNeeded()`` does it when the tail or
/// the holes have grown past a fraction of the population.
///
/// At 1,000,000 members and Q = 100 the columns take about 350 MB.
///
/// Not thread-safe: any number of concurrent readers (``MatchFinder`` scans)
/// or one writer. Callers that mix them hold a readers-writer lock.
public final class Population {
    public let survey: Survey
    let chunks: Int
    let rowStride: Int

    private(set) var capacity: Int
    /// Slots in use, sorted and tail; holes included.
    private(set) var slotCount = 0
    /// Slots `0 ..< sortedCount` are in cohort order.
    private(set) var sortedCount = 0
    private var holes = 0
    private(set) var ids: UnsafeMutablePointer<MemberID>
    private(set) var filters: UnsafeMutablePointer<UInt32>
    private(set) var lastActive: UnsafeMutablePointer<Int64>
    /// The caller's version tag of each slot's record (``upsert(_:tag:)``).
    private(set) var tags: UnsafeMutablePointer<UInt64>
    private(set) var rows: UnsafeMutableRawPointer
    /// `cohortStart[c]` is the first sorted slot of cohort `c`;
    /// `cohortStart[Cohort.count]` is `sortedCount`.
    private(set) var cohortStart: [Int32]

    private var slotByID: [MemberID: Int32] = [:]
    /// Who each member blocked (sorted, unique), for members that blocked anyone.
    private var blocks: [MemberID: [MemberID]] = [:]
    /// Who blocked each id (sorted, unique); kept for ids that are absent too.
    private var blockedBy: [MemberID: [MemberID]] = [:]

    static let rowAlignment = 64
    static let neverActive = Int64.min

    public init(survey: Survey, capacity: Int = 1024) {
        self.survey = survey
        chunks = AnswerRow.chunkCount(questions: survey.questionCount)
        rowStride = chunks * AnswerRow.bytesPerChunk
        self.capacity = max(capacity, 16)
        ids = .allocate(capacity: self.capacity)
        filters = .allocate(capacity: self.capacity)
        lastActive = .allocate(capacity: self.capacity)
        tags = .allocate(capacity: self.capacity)
        rows = .allocate(byteCount: self.capacity * rowStride, alignment: Population.rowAlignment)
        cohortStart = Array(repeating: 0, count: Cohort.count + 1)
    }

    deinit {
        ids.deallocate()
        filters.deallocate()
        lastActive.deallocate()
        tags.deallocate()
        rows.deallocate()
    }

    /// Live members.
    public var count: Int { slotByID.count }

    /// Bytes held by the columns (not counting the id map).
    public var columnBytes: Int { capacity * (rowStride + 4 + 4 + 8 + 8) }

    /// Members added or moved since the last ``organize()``, scanned in full.
    public var unsortedCount: Int { slotCount - sortedCount }

    public func contains(_ id: MemberID) -> Bool { slotByID[id] != nil }

    /// Every live member id, in no particular order.
    public var memberIDs: [MemberID] { Array(slotByID.keys) }

    /// Inserts a member or replaces the one with the same id. The member is
    /// validated against the survey first; an invalid member changes nothing.
    /// A replacement that keeps the cohort is written in place; anything else
    /// goes to the unsorted tail.
    ///
    /// `tag` is the caller's version of the record (the member store's
    /// answers version: a digest of every field that affects matches), kept
    /// beside it and returned by ``tag(of:)``; the population never reads it.
    public func upsert(_ member: Member, tag: UInt64 = 0) throws(MemberValidationError) {
        try survey.validate(member)
        let word = FilterWord.make(member)
        let slot: Int
        if let existing = slotByID[member.id].map(Int.init),
            existing >= sortedCount || Cohort.of(filters[existing]) == Cohort.of(word)
        {
            slot = existing
        } else {
            if let existing = slotByID[member.id].map(Int.init) { makeHole(existing) }
            if slotCount == capacity { grow(to: capacity * 2) }
            slot = slotCount
            slotCount += 1
        }
        let row = rows + slot * rowStride
        row.initializeMemory(as: UInt8.self, repeating: 0, count: rowStride)
        AnswerRow.encode(member.answers, into: row)
        ids[slot] = member.id
        filters[slot] = word
        lastActive[slot] = member.lastActive ?? Population.neverActive
        tags[slot] = tag
        slotByID[member.id] = Int32(slot)
        setBlocks(of: member.id, to: member.blocked)
    }

    /// Removes a member; false when there was none with that id. Blocks others
    /// placed on the id stay: they apply again if the id comes back.
    @discardableResult
    public func remove(_ id: MemberID) -> Bool {
        guard let slot = slotByID.removeValue(forKey: id) else { return false }
        makeHole(Int(slot))
        setBlocks(of: id, to: [])
        return true
    }

    /// The tag `member` was upserted with; nil when absent.
    public func tag(of id: MemberID) -> UInt64? {
        guard let slot = slotByID[id].map(Int.init) else { return nil }
        return tags[slot]
    }

    /// Records a member's last activity without touching anything a scan
    /// reads; false when the member is absent.
    @discardableResult
    public func setLastActive(_ id: MemberID, _ lastActive: Int64?) -> Bool {
        guard let slot = slotByID[id].map(Int.init) else { return false }
        self.lastActive[slot] = lastActive ?? Population.neverActive
        return true
    }

    /// The member as stored (answers in question order, blocks sorted).
    public func member(_ id: MemberID) -> Member? {
        guard let slot = slotByID[id].map(Int.init) else { return nil }
        let word = filters[slot]
        let active = lastActive[slot]
        return Member(
            id: id, gender: FilterWord.gender(word), seeking: FilterWord.seeking(word),
            age: FilterWord.age(word), ageMin: FilterWord.ageMin(word), ageMax: FilterWord.ageMax(word),
            lastActive: active == Population.neverActive ? nil : active,
            answers: AnswerRow.decode(rows + slot * rowStride, questions: survey.questionCount),
            blocked: blocks[id] ?? [])
    }

    /// Reserves room for `count` members without further growth.
    public func reserveCapacity(_ count: Int) {
        if count > capacity { grow(to: count) }
    }

    /// Sorts every member into cohort order, dropping holes. Costs one pass
    /// over the columns (about 0.3 s at a million members) and a second copy
    /// of them while it runs.
    public func organize() {
        // Counting sort of live slots by (cohort, age_min): within a cohort,
        // the members whose range starts at or below a probe's age come
        // first, so the rows that pass the partner-side age check are one
        // contiguous prefix.
        let bucketsPerCohort = 128
        var counts = [Int32](repeating: 0, count: Cohort.count * bucketsPerCohort + 1)
        @inline(__always) func bucket(_ word: UInt32) -> Int {
            Cohort.of(word) * bucketsPerCohort + FilterWord.ageMin(word)
        }
        for slot in 0..<slotCount where filters[slot] != 0 {
            counts[bucket(filters[slot]) + 1] += 1
        }
        for b in 0..<counts.count - 1 { counts[b + 1] += counts[b] }
        var starts = [Int32](repeating: 0, count: Cohort.count + 1)
        for c in 0...Cohort.count { starts[c] = counts[c * bucketsPerCohort] }
        let live = Int(counts[counts.count - 1])
        let newCapacity = max(capacity, 16)
        let newIDs = UnsafeMutablePointer<MemberID>.allocate(capacity: newCapacity)
        let newFilters = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
        let newActive = UnsafeMutablePointer<Int64>.allocate(capacity: newCapacity)
        let newTags = UnsafeMutablePointer<UInt64>.allocate(capacity: newCapacity)
        let newRows = UnsafeMutableRawPointer.allocate(
            byteCount: newCapacity * rowStride, alignment: Population.rowAlignment)
        var next = counts
        for slot in 0..<slotCount where filters[slot] != 0 {
            let b = bucket(filters[slot])
            let target = Int(next[b])
            next[b] += 1
            newIDs[target] = ids[slot]
            newFilters[target] = filters[slot]
            newActive[target] = lastActive[slot]
            newTags[target] = tags[slot]
            (newRows + target * rowStride).copyMemory(from: rows + slot * rowStride, byteCount: rowStride)
            slotByID[ids[slot]] = Int32(target)
        }
        ids.deallocate()
        filters.deallocate()
        lastActive.deallocate()
        tags.deallocate()
        rows.deallocate()
        ids = newIDs
        filters = newFilters
        lastActive = newActive
        tags = newTags
        rows = newRows
        capacity = newCapacity
        slotCount = live
        sortedCount = live
        holes = 0
        cohortStart = starts
    }

    /// Calls ``organize()`` when the unsorted tail holds more than 1/32 of
    /// the members (beyond a few thousand), or holes take more than 1/8 of
    /// the slots. True when it did.
    @discardableResult
    public func organizeIfNeeded() -> Bool {
        let tail = slotCount - sortedCount
        if tail > max(4096, count / 32) || holes > max(4096, slotCount / 8) {
            organize()
            return true
        }
        return false
    }

    // MARK: internals used by the scan

    func slot(of id: MemberID) -> Int? { slotByID[id].map(Int.init) }

    /// The sorted slots of cohort class `cls` with ages in `ages`.
    func sortedRange(class cls: Int, ages: ClosedRange<Int>) -> Range<Int> {
        let low = Int(cohortStart[Cohort.index(class: cls, age: ages.lowerBound)])
        let high = Int(cohortStart[Cohort.index(class: cls, age: ages.upperBound) + 1])
        return low..<high
    }

    /// The ids a member blocked, sorted.
    func blockedIDs(of id: MemberID) -> [MemberID] { blocks[id] ?? [] }

    /// The ids that `id` blocked or that blocked `id`, sorted and unique.
    func blockPartners(of id: MemberID, blocked ownBlocks: [MemberID]) -> [MemberID] {
        let others = blockedBy[id] ?? []
        if others.isEmpty && ownBlocks.isEmpty { return [] }
        return Array(Set(ownBlocks).union(others)).sorted()
    }

    private func makeHole(_ slot: Int) {
        filters[slot] = 0
        ids[slot] = 0
        if slot < sortedCount { holes += 1 }
    }

    private func setBlocks(of id: MemberID, to newBlocks: [MemberID]) {
        let old = blocks[id] ?? []
        if old.isEmpty && newBlocks.isEmpty { return }
        let new = Array(Set(newBlocks)).sorted()
        if old == new { return }
        for target in old {
            blockedBy[target]?.removeAll { $0 == id }
            if blockedBy[target]?.isEmpty == true { blockedBy[target] = nil }
        }
        for target in new {
            blockedBy[target, default: []].append(id)
            blockedBy[target]!.sort()
        }
        blocks[id] = new.isEmpty ? nil : new
    }

    private func grow(to newCapacity: Int) {
        let newIDs = UnsafeMutablePointer<MemberID>.allocate(capacity: newCapacity)
        newIDs.moveInitialize(from: ids, count: slotCount)
        ids.deallocate()
        ids = newIDs
        let newFilters = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
        newFilters.moveInitialize(from: filters, count: slotCount)
        filters.deallocate()
        filters = newFilters
        let newActive = UnsafeMutablePointer<Int64>.allocate(capacity: newCapacity)
        newActive.moveInitialize(from: lastActive, count: slotCount)
        lastActive.deallocate()
        lastActive = newActive
        let newTags = UnsafeMutablePointer<UInt64>.allocate(capacity: newCapacity)
        newTags.moveInitialize(from: tags, count: slotCount)
        tags.deallocate()
        tags = newTags
        let newRows = UnsafeMutableRawPointer.allocate(
            byteCount: newCapacity * rowStride, alignment: Population.rowAlignment)
        newRows.copyMemory(from: rows, byteCount: slotCount * rowStride)
        rows.deallocate()
        rows = newRows
        capacity = newCapacity
    }
}

/// Cohorts: (gender, seeking) class, then age. The sorted part of a
/// ``Population`` is in cohort order.
enum Cohort {
    /// 3 genders x 7 non-empty seeking sets.
    static let classCount = 21
    static let ages = Member.ageRange
    static let count = classCount * ages.count

    static func classIndex(gender: UInt32, seeking: UInt32) -> Int { Int(gender) * 7 + Int(seeking) - 1 }

    static func index(class cls: Int, age: Int) -> Int { cls * ages.count + age - ages.lowerBound }

    /// The cohort of a live filter word.
    @inline(__always)
    static func of(_ word: UInt32) -> Int {
        let gender = UInt32((word & 0b111).trailingZeroBitCount)
        let cls = classIndex(gender: gender, seeking: (word >> 4) & 0b111)
        return index(class: cls, age: FilterWord.age(word))
    }
}
