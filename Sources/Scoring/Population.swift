/// The candidate population in memory, laid out for the scoring scan: a
/// struct of arrays, one contiguous buffer per field, indexed by slot.
///
/// - `filters`: the packed hard-filter word (``FilterWord``), 4 bytes a slot;
///   the filter pass reads only this column.
/// - `rows`: the answer bytes (``AnswerRow``), `rowStride` bytes a slot, read
///   only for candidates that pass the filters.
/// - `ids`, `lastActive`: 4 and 8 bytes a slot.
/// - blocks as two sparse maps (who a member blocked, who blocked a member).
///
/// At 1,000,000 members and Q = 100 that is about 350 MB of columns plus the
/// id-to-slot map. A removed member leaves an empty slot (filter word 0, which
/// no one seeks) that the next insert reuses.
///
/// Not thread-safe: any number of concurrent readers (``MatchFinder`` scans)
/// or one writer. Callers that mix them hold a readers-writer lock.
public final class Population {
    public let survey: Survey
    let chunks: Int
    let rowStride: Int

    private(set) var capacity: Int
    /// Slots `0 ..< slotCount` have been used; empty ones have filter 0.
    private(set) var slotCount: Int = 0
    private(set) var ids: UnsafeMutablePointer<MemberID>
    private(set) var filters: UnsafeMutablePointer<UInt32>
    private(set) var lastActive: UnsafeMutablePointer<Int64>
    private(set) var rows: UnsafeMutableRawPointer

    private var slotByID: [MemberID: Int32] = [:]
    private var freeSlots: [Int32] = []
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
        rows = .allocate(byteCount: self.capacity * rowStride, alignment: Population.rowAlignment)
    }

    deinit {
        ids.deallocate()
        filters.deallocate()
        lastActive.deallocate()
        rows.deallocate()
    }

    /// Live members.
    public var count: Int { slotByID.count }

    /// Bytes held by the columns (not counting the id map).
    public var columnBytes: Int { capacity * (rowStride + 4 + 4 + 8) }

    public func contains(_ id: MemberID) -> Bool { slotByID[id] != nil }

    /// Every live member id, in no particular order.
    public var memberIDs: [MemberID] { Array(slotByID.keys) }

    /// Inserts a member or replaces the one with the same id. The member is
    /// validated against the survey first; an invalid member changes nothing.
    public func upsert(_ member: Member) throws(MemberValidationError) {
        try survey.validate(member)
        let slot: Int
        if let existing = slotByID[member.id] {
            slot = Int(existing)
        } else if let reused = freeSlots.popLast() {
            slot = Int(reused)
        } else {
            if slotCount == capacity { grow(to: capacity * 2) }
            slot = slotCount
            slotCount += 1
        }
        let row = rows + slot * rowStride
        row.initializeMemory(as: UInt8.self, repeating: 0, count: rowStride)
        AnswerRow.encode(member.answers, into: row)
        ids[slot] = member.id
        filters[slot] = FilterWord.make(member)
        lastActive[slot] = member.lastActive ?? Population.neverActive
        slotByID[member.id] = Int32(slot)
        setBlocks(of: member.id, to: member.blocked)
    }

    /// Removes a member; false when there was none with that id. Blocks others
    /// placed on the id stay: they apply again if the id comes back.
    @discardableResult
    public func remove(_ id: MemberID) -> Bool {
        guard let slot = slotByID.removeValue(forKey: id) else { return false }
        filters[Int(slot)] = 0
        ids[Int(slot)] = 0
        setBlocks(of: id, to: [])
        freeSlots.append(slot)
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

    // MARK: internals used by the scan

    func slot(of id: MemberID) -> Int? { slotByID[id].map(Int.init) }

    /// The ids a member blocked, sorted.
    func blockedIDs(of id: MemberID) -> [MemberID] { blocks[id] ?? [] }

    /// The ids that `id` blocked or that blocked `id`, sorted and unique.
    func blockPartners(of id: MemberID, blocked ownBlocks: [MemberID]) -> [MemberID] {
        let others = blockedBy[id] ?? []
        if others.isEmpty && ownBlocks.isEmpty { return [] }
        return Array(Set(ownBlocks).union(others)).sorted()
    }

    private func setBlocks(of id: MemberID, to newBlocks: [MemberID]) {
        let old = blocks[id] ?? []
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
        let newRows = UnsafeMutableRawPointer.allocate(
            byteCount: newCapacity * rowStride, alignment: Population.rowAlignment)
        newRows.copyMemory(from: rows, byteCount: slotCount * rowStride)
        rows.deallocate()
        rows = newRows
        capacity = newCapacity
    }
}
