/// Finds members' top-N matches in a ``Population``: the hot path.
///
/// A scan has three passes, each a tight loop over contiguous memory:
/// 1. the filter pass reads the 4-byte filter column of every slot and
///    compacts the slots that pass the mutual gender/seeking and age filters
///    into a candidate list (branch-free);
/// 2. the scoring pass reads the answer row of each candidate only, computes
///    the pair's integer sums 16 questions at a time in SIMD registers, turns
///    them into tenths with ``Score``, and records a 64-bit sort key
///    (`tenths << 32 | ~id`) and a histogram of tenths;
/// 3. selection uses the histogram to find the lowest score that makes the
///    cut, keeps everything above it, picks the smallest ids among the ties by
///    quickselect, and sorts only the N survivors.
///
/// No allocation or dynamic dispatch happens per candidate: scratch buffers
/// belong to the finder and are reused. One finder per thread; a finder is
/// not thread-safe, but any number of finders may scan one population at once.
public final class MatchFinder {
    public let settings: ScoringSettings

    /// What the last scan did, for metrics and benchmarks.
    public struct ScanStatistics: Sendable, Hashable {
        /// Slots read by the filter pass.
        public var slots = 0
        /// Candidates that passed the hard filters (answer rows read).
        public var candidates = 0
        /// Candidates with a score of at least MIN_SCORE.
        public var scored = 0
    }

    public private(set) var lastScan = ScanStatistics()

    private var scratchCapacity = 0
    private var candidates: UnsafeMutablePointer<UInt32>
    private var keys: UnsafeMutablePointer<UInt64>
    private let histogram: UnsafeMutablePointer<Int>
    /// The probed member's chunk vectors: per chunk, answer bits, accept
    /// masks, weights, answered mask (0xFF / 0).
    private let probe: UnsafeMutablePointer<SIMD16<UInt8>>
    /// A zeroed row to encode a member that is not (or not yet) in the population.
    private let probeRow: UnsafeMutableRawPointer

    private static let maxChunks = AnswerRow.chunkCount(questions: Survey.questionLimit.upperBound)

    public init(settings: ScoringSettings = .default) {
        self.settings = settings
        candidates = .allocate(capacity: 1)
        keys = .allocate(capacity: 1)
        histogram = .allocate(capacity: 101)
        probe = .allocate(capacity: MatchFinder.maxChunks * 4)
        probeRow = .allocate(
            byteCount: MatchFinder.maxChunks * AnswerRow.bytesPerChunk, alignment: Population.rowAlignment)
    }

    deinit {
        candidates.deallocate()
        keys.deallocate()
        histogram.deallocate()
        probe.deallocate()
        probeRow.deallocate()
    }

    /// The matches of a member in the population, ranked; nil when the id is
    /// not in the population.
    public func matches(forID id: MemberID, in population: Population) -> [Match]? {
        guard let slot = population.slot(of: id) else { return nil }
        let row = UnsafeRawPointer(population.rows + slot * population.rowStride)
        let partners = population.blockPartners(of: id, blocked: population.blockedIDs(of: id))
        return scan(population, id: id, filter: population.filters[slot], row: row, blockPartners: partners)
    }

    /// The matches of `member` against the population, ranked. The member
    /// need not be in the population; if an older version of them is, it is
    /// ignored (a member is never their own candidate).
    public func matches(for member: Member, in population: Population) throws(MemberValidationError) -> [Match] {
        try population.survey.validate(member)
        let rowBytes = population.rowStride
        probeRow.initializeMemory(as: UInt8.self, repeating: 0, count: rowBytes)
        AnswerRow.encode(member.answers, into: probeRow)
        let partners = population.blockPartners(of: member.id, blocked: member.blocked)
        return scan(
            population, id: member.id, filter: FilterWord.make(member), row: UnsafeRawPointer(probeRow),
            blockPartners: partners)
    }

    /// ``matches(for:in:)``, and with it every candidate with a score of at
    /// least MIN_SCORE, unranked: what a member's change may do to other
    /// members' sets (the filters and the score are symmetric, so these are
    /// exactly the members whose sets may rank `member`). One scan; the
    /// second list costs one copy of the scored keys.
    public func matchesCollectingAll(for member: Member, in population: Population) throws(MemberValidationError)
        -> (top: [Match], all: [Match])
    {
        try population.survey.validate(member)
        let rowBytes = population.rowStride
        probeRow.initializeMemory(as: UInt8.self, repeating: 0, count: rowBytes)
        AnswerRow.encode(member.answers, into: probeRow)
        let partners = population.blockPartners(of: member.id, blocked: member.blocked)
        var all: [Match]? = []
        let top = scan(
            population, id: member.id, filter: FilterWord.make(member), row: UnsafeRawPointer(probeRow),
            blockPartners: partners, collectAll: &all)
        return (top, all ?? [])
    }

    // MARK: the scan

    private func scan(
        _ population: Population, id: MemberID, filter: UInt32, row: UnsafeRawPointer, blockPartners: [MemberID]
    ) -> [Match] {
        var none: [Match]? = nil
        return scan(population, id: id, filter: filter, row: row, blockPartners: blockPartners, collectAll: &none)
    }

    /// The scan itself; with `all` non-nil it also receives every scored
    /// candidate, unranked.
    private func scan(
        _ population: Population, id: MemberID, filter: UInt32, row: UnsafeRawPointer, blockPartners: [MemberID],
        collectAll all: inout [Match]?
    ) -> [Match] {
        let slotCount = population.slotCount
        reserveScratch(slotCount)
        loadProbe(row: row, chunks: population.chunks)

        // Pass 1 over the sorted runs of every compatible class within the
        // probe's age range (in slot order, so the list stays sorted), then
        // over the unsorted tail.
        var count = 0
        var slotsRead = 0
        let seeking = (filter >> 4) & 0b111
        let gender = UInt32((filter & 0b111).trailingZeroBitCount)
        let ages = FilterWord.ageMin(filter)...FilterWord.ageMax(filter)
        for candidateGender: UInt32 in 0..<3 where seeking & (1 << candidateGender) != 0 {
            for candidateSeeking: UInt32 in 1...7 where candidateSeeking & (1 << gender) != 0 {
                let cls = Cohort.classIndex(gender: candidateGender, seeking: candidateSeeking)
                let run = population.sortedRange(class: cls, ages: ages)
                count = filterPass(population.filters, run, probe: filter, into: count)
                slotsRead += run.count
            }
        }
        let tail = population.sortedCount..<slotCount
        count = filterPass(population.filters, tail, probe: filter, into: count)
        slotsRead += tail.count

        count = removeExcluded(
            count: count, excluded: excludedSlots(population, id: id, blockPartners: blockPartners))
        let scored = scoringPass(population, count: count)
        lastScan = ScanStatistics(slots: slotsRead, candidates: count, scored: scored)
        if all != nil {
            let keys = self.keys
            all = [Match](unsafeUninitializedCapacity: scored) { buffer, initialized in
                for i in 0..<scored {
                    buffer[i] = Match(id: ~MemberID(truncatingIfNeeded: keys[i]), tenths: Int(keys[i] >> 32))
                }
                initialized = scored
            }
        }
        return select(scored: scored)
    }

    private func reserveScratch(_ slots: Int) {
        guard slots > scratchCapacity else { return }
        let capacity = max(slots, scratchCapacity * 2, 1024)
        candidates.deallocate()
        keys.deallocate()
        candidates = .allocate(capacity: capacity)
        keys = .allocate(capacity: capacity)
        scratchCapacity = capacity
    }

    private func loadProbe(row: UnsafeRawPointer, chunks: Int) {
        for c in 0..<chunks {
            let base = c * AnswerRow.bytesPerChunk
            let answer = row.loadUnaligned(fromByteOffset: base, as: SIMD16<UInt8>.self)
            probe[4 * c] = answer
            probe[4 * c + 1] = row.loadUnaligned(fromByteOffset: base + AnswerRow.acceptOffset, as: SIMD16<UInt8>.self)
            probe[4 * c + 2] = row.loadUnaligned(fromByteOffset: base + AnswerRow.weightOffset, as: SIMD16<UInt8>.self)
            probe[4 * c + 3] = SIMD16<UInt8>.zero &- pointwiseMin(answer, SIMD16(repeating: 1))
        }
    }

    /// Pass 1: appends the slots of `range` whose filter word passes the
    /// mutual hard filters against `probe` to `candidates` (from index
    /// `count`), branch-free, and returns the new count.
    private func filterPass(_ filters: UnsafePointer<UInt32>, _ range: Range<Int>, probe: UInt32, into count: Int) -> Int {
        let seeking = (probe >> 4) & 0b111  // genders A seeks, as gender bits
        let seekShift = 4 &+ UInt32((probe & 0b111).trailingZeroBitCount)  // A's gender in B's seeking
        let age = (probe >> 8) & 0x7F
        let ageMin = (probe >> 16) & 0x7F
        let ageSpan = ((probe >> 24) & 0x7F) &- ageMin
        let out = candidates
        var count = count
        for slot in range {
            let word = filters[slot]
            let aSeeksB = ((word & seeking) &+ 7) >> 3  // 1 when B's gender bit is in A's seeking
            let bSeeksA = (word >> seekShift) & 1
            let bAge = (word >> 8) & 0x7F
            let bMin = (word >> 16) & 0x7F
            let bMax = (word >> 24) & 0x7F
            let bInRange: UInt32 = (bAge &- ageMin) <= ageSpan ? 1 : 0
            let aInRange: UInt32 = (age &- bMin) <= (bMax &- bMin) ? 1 : 0
            out[count] = UInt32(truncatingIfNeeded: slot)
            count &+= Int(aSeeksB & bSeeksA & bInRange & aInRange)
        }
        return count
    }

    /// The slots a scan must skip: the member's own (an older version of
    /// them) and everyone in a block with them, sorted.
    private func excludedSlots(_ population: Population, id: MemberID, blockPartners: [MemberID]) -> [UInt32] {
        var slots: [UInt32] = []
        if let own = population.slot(of: id) { slots.append(UInt32(own)) }
        for partner in blockPartners {
            if let slot = population.slot(of: partner) { slots.append(UInt32(slot)) }
        }
        slots.sort()
        return slots
    }

    /// Removes `excluded` (sorted) from the sorted candidate list.
    private func removeExcluded(count: Int, excluded: [UInt32]) -> Int {
        if excluded.isEmpty { return count }
        var kept = 0
        var next = 0
        for i in 0..<count {
            let slot = candidates[i]
            while next < excluded.count && excluded[next] < slot { next += 1 }
            if next < excluded.count && excluded[next] == slot { continue }
            candidates[kept] = slot
            kept += 1
        }
        return kept
    }

    /// Pass 2: scores every candidate; writes a key per candidate with a
    /// score of at least `minScore` and counts them per tenths value.
    private func scoringPass(_ population: Population, count: Int) -> Int {
        let rows = UnsafeRawPointer(population.rows)
        let stride = population.rowStride
        let chunks = population.chunks
        let ids = population.ids
        let minCommon = settings.minCommon
        let minScore = settings.minScore
        let probe = UnsafePointer(self.probe)
        histogram.initialize(repeating: 0, count: 101)
        var scored = 0
        for i in 0..<count {
            let slot = Int(candidates[i])
            let sums = MatchFinder.sums(row: rows + slot &* stride, probe: probe, chunks: chunks)
            guard sums.n >= minCommon, sums.dA != 0, sums.dB != 0 else { continue }
            let t = Score.tenths(n: sums.n, sA: sums.sA, dA: sums.dA, sB: sums.sB, dB: sums.dB)
            guard t >= minScore else { continue }
            keys[scored] = UInt64(t) << 32 | UInt64(~ids[slot])
            scored &+= 1
            histogram[t] &+= 1
        }
        return scored
    }

    /// The SCORING.md sums of the probe against one candidate row.
    ///
    /// Per chunk of 16 questions, with B's bytes loaded from the row and A's
    /// from the probe (every byte is 0 on a side that skipped the question):
    /// - `bAnswered` is 0xFF where B answered (its answer bit is not 0);
    /// - n counts lanes where both answered;
    /// - dA adds A's weight where B answered; sA where B's answer bit is in A's accept mask;
    /// - dB adds B's weight where A answered; sB where A's answer bit is in B's accept mask.
    ///
    /// Only operations that lower to one SSE2 instruction each are used (the
    /// generic `pointwiseMin` and widening initialisers become calls): masks
    /// come from lane comparisons reinterpreted as bytes, and bytes are
    /// widened by viewing 16 bytes as 8 16-bit lanes and adding the low and
    /// high bytes (a weight is at most 250; a 16-bit lane sums at most
    /// 2 x 32 chunks x 250 = 16,000).
    @inline(__always)
    static func sums(row: UnsafeRawPointer, probe: UnsafePointer<SIMD16<UInt8>>, chunks: Int)
        -> (n: Int, sA: Int64, dA: Int64, sB: Int64, dB: Int64)
    {
        let zero = SIMD16<UInt8>.zero
        let lowBytes = SIMD8<UInt16>(repeating: 0x00FF)
        var n = SIMD16<UInt8>.zero
        var sA = SIMD8<UInt16>.zero
        var dA = SIMD8<UInt16>.zero
        var sB = SIMD8<UInt16>.zero
        var dB = SIMD8<UInt16>.zero
        var chunkRow = row
        var p = probe
        for _ in 0..<chunks {
            let bAnswer = chunkRow.load(as: SIMD16<UInt8>.self)
            let bAccept = chunkRow.load(fromByteOffset: AnswerRow.acceptOffset, as: SIMD16<UInt8>.self)
            let bWeight = chunkRow.load(fromByteOffset: AnswerRow.weightOffset, as: SIMD16<UInt8>.self)
            let aAnswer = p[0]
            let aAccept = p[1]
            let aWeight = p[2]
            let aAnswered = p[3]
            let bSkipped = bytes(bAnswer .== zero)
            let aRejects = bytes((bAnswer & aAccept) .== zero)
            let bRejects = bytes((bAccept & aAnswer) .== zero)
            // `x & ~mask` keeps x where the mask is 0 (one pandn each).
            n &-= aAnswered & ~bSkipped  // 0xFF is -1: counts one per common question
            let dAChunk = widened(aWeight & ~bSkipped, lowBytes)
            let sAChunk = widened(aWeight & ~aRejects, lowBytes)
            let dBChunk = widened(bWeight & aAnswered, lowBytes)
            let sBChunk = widened(bWeight & ~bRejects, lowBytes)
            dA &+= dAChunk
            sA &+= sAChunk
            dB &+= dBChunk
            sB &+= sBChunk
            chunkRow += AnswerRow.bytesPerChunk
            p += 4
        }
        return (
            Int(horizontalSum(widened(n, lowBytes))),
            Int64(horizontalSum(sA)), Int64(horizontalSum(dA)),
            Int64(horizontalSum(sB)), Int64(horizontalSum(dB))
        )
    }

    /// A lane mask as bytes: 0xFF where true, 0 where false.
    @inline(__always)
    static func bytes(_ mask: SIMDMask<SIMD16<Int8>>) -> SIMD16<UInt8> {
        unsafeBitCast(mask, to: SIMD16<UInt8>.self)
    }

    /// Sums adjacent byte pairs into 8 16-bit lanes.
    @inline(__always)
    static func widened(_ v: SIMD16<UInt8>, _ lowBytes: SIMD8<UInt16>) -> SIMD8<UInt16> {
        let pairs = unsafeBitCast(v, to: SIMD8<UInt16>.self)
        return (pairs & lowBytes) &+ (pairs &>> 8)
    }

    /// The sum of 8 16-bit lanes (each below 32,768).
    @inline(__always)
    static func horizontalSum(_ v: SIMD8<UInt16>) -> UInt32 {
        let quads = unsafeBitCast(v, to: SIMD4<UInt32>.self)
        let pairs = (quads & SIMD4(repeating: 0xFFFF)) &+ (quads &>> 16)
        return pairs[0] &+ pairs[1] &+ pairs[2] &+ pairs[3]
    }

    /// Pass 3: the top N of `scored` keys, ranked.
    private func select(scored: Int) -> [Match] {
        let limit = settings.topN
        var kept = scored
        if scored > limit {
            // The lowest tenths value that makes the cut, and how many rank above it.
            var above = 0
            var threshold = 100
            while above + histogram[threshold] < limit {
                above += histogram[threshold]
                threshold -= 1
            }
            // Move keys above the threshold to the front, then the ties.
            var front = 0
            for i in 0..<scored where Int(keys[i] >> 32) > threshold {
                keys.swapAt(front, i)
                front += 1
            }
            var ties = front
            for i in front..<scored where Int(keys[i] >> 32) == threshold {
                keys.swapAt(ties, i)
                ties += 1
            }
            // Among the ties keep the largest keys (smallest ids).
            MatchFinder.selectLargest(keys + front, count: ties - front, keep: limit - above)
            kept = limit
        }
        // Ascending with the default comparison (no closure), read backwards.
        var top = UnsafeMutableBufferPointer(start: keys, count: kept)
        top.sort()
        return [Match](unsafeUninitializedCapacity: kept) { buffer, initialized in
            for i in 0..<kept {
                let key = top[kept - 1 - i]
                buffer[i] = Match(id: ~MemberID(truncatingIfNeeded: key), tenths: Int(key >> 32))
            }
            initialized = kept
        }
    }

    /// Rearranges `base[0 ..< count]` so that its `keep` largest values come
    /// first (in no order): quickselect with a median-of-three pivot, expected
    /// O(count). Values are distinct (they contain the member id).
    static func selectLargest(_ base: UnsafeMutablePointer<UInt64>, count: Int, keep: Int) {
        var low = 0
        var high = count - 1
        while low < high {
            let mid = low + (high - low) / 2
            let a = base[low], b = base[mid], c = base[high]
            let pivot = max(min(a, b), min(max(a, b), c))
            // Hoare-style partition: larger values to the left.
            var i = low
            var j = high
            while i <= j {
                while base[i] > pivot { i += 1 }
                while base[j] < pivot { j -= 1 }
                if i <= j {
                    base.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            // Now base[low...j] >= pivot >= base[i...high].
            if keep - 1 <= j {
                high = j
            } else if keep - 1 >= i {
                low = i
            } else {
                return
            }
        }
    }
}

extension UnsafeMutablePointer where Pointee == UInt64 {
    @inline(__always)
    fileprivate func swapAt(_ i: Int, _ j: Int) {
        let t = self[i]
        self[i] = self[j]
        self[j] = t
    }
}
