import Dispatch
import MemberFormat
import Scoring

#if canImport(Glibc)
import Glibc
import Synchronization
#endif

/// A deterministic synthetic population in the import format: for a given
/// seed, the same survey and the same members, byte for byte, however many
/// threads generate them.
///
/// The model, chosen so that scores spread across 0-10 the way a real site's
/// do:
/// - a few latent traits per member (standard normal); each question loads on
///   one trait with a sign, and a member's answer is their trait value plus
///   noise, cut into the question's options;
/// - a member accepts options around where they themselves stand on the
///   question (people like people like them), sometimes narrowly, sometimes
///   broadly, sometimes anything;
/// - importance skewed towards "somewhat"; about 90% of questions answered;
/// - 47% men, 47% women, 6% nonbinary; mostly heterosexual seeking, some
///   bisexual, gay and lesbian members, nonbinary members seeking various;
/// - ages 18-70 (most 24-45) with preference ranges around the member's age;
/// - about 2% block one to three ids (some of which do not exist);
/// - last_active over the two years before `asOf`: about 40% within 90 days,
///   3% never active.
package struct SyntheticPopulation: Sendable {
    package let seed: UInt64
    package let members: Int
    package let survey: Survey
    /// The moment "now" for last_active; fixed so output is deterministic.
    package let asOf: Int64
    /// Member ids are `firstID ..< firstID + members`.
    package let firstID: MemberID

    static let traitCount = 5

    /// Per question: the trait it loads on and the loading's sign.
    private let questionTrait: [Int]
    private let questionSign: [Double]

    /// 2026-11-01T00:00:00Z.
    package static let defaultAsOf: Int64 = 1_793_491_200

    package init(members: Int, seed: UInt64, questions: Int = 100, asOf: Int64 = defaultAsOf, firstID: MemberID = 1) {
        precondition(members >= 0 && questions >= 1 && questions <= 512)
        self.seed = seed
        self.members = members
        self.asOf = asOf
        self.firstID = firstID
        var rng = SplitMix64(seed: seed, stream: UInt64.max)
        var counts: [Int] = []
        var traits: [Int] = []
        var signs: [Double] = []
        for _ in 0..<questions {
            counts.append(2 + rng.pick(Model.optionCountWeights))
            traits.append(rng.int(in: 0...(SyntheticPopulation.traitCount - 1)))
            signs.append(rng.unit() < 0.5 ? -1 : 1)
        }
        survey = try! Survey(optionCounts: counts)
        questionTrait = traits
        questionSign = signs
    }

    /// Member number `index` (0-based).
    package func member(_ index: Int) -> Member {
        var rng = SplitMix64(seed: seed, stream: UInt64(index))
        let id = firstID + MemberID(index)

        let gender = Model.genders[rng.pick(Model.genderWeights)]
        let seeking: GenderSet
        switch gender {
        case .man: seeking = Model.menSeek[rng.pick(Model.menSeekWeights)]
        case .woman: seeking = Model.womenSeek[rng.pick(Model.womenSeekWeights)]
        case .nonbinary: seeking = Model.nonbinarySeek[rng.pick(Model.nonbinarySeekWeights)]
        }
        let age = min(70, max(18, Int((33 + 10 * rng.normal()).rounded())))
        let (below, above): (ClosedRange<Int>, ClosedRange<Int>)
        switch gender {
        case .man: (below, above) = (3...12, 1...6)
        case .woman: (below, above) = (1...5, 3...12)
        case .nonbinary: (below, above) = (3...10, 3...10)
        }
        let ageMin = max(18, age - rng.int(in: below))
        let ageMax = min(120, age + rng.int(in: above))

        var traits = [Double](repeating: 0, count: SyntheticPopulation.traitCount)
        for t in traits.indices { traits[t] = rng.normal() }
        let answerRate = 0.8 + 0.18 * rng.unit()
        // Some members are picky (accept little), some open-minded.
        let openness = rng.unit()
        let breadthWeights = (60 - 55 * openness, 35.0, 5 + 30 * openness, 25 * openness * openness)
        var answers: [Answer] = []
        answers.reserveCapacity(survey.questionCount)
        for q in 0..<survey.questionCount {
            // Draw everything for every question so one choice does not shift the others.
            let answered = rng.unit() < answerRate
            let noise = rng.normal()
            let preferenceNoise = rng.normal()
            let breadth = rng.pick4(breadthWeights)
            let importance = Importance(rawValue: UInt8(rng.pick(Model.importanceWeights)))!
            guard answered else { continue }
            let k = survey.optionCounts[q]
            let stance = questionSign[q] * traits[questionTrait[q]]
            let option = SyntheticPopulation.cut(stance + 0.5 * noise, options: k)
            let ideal = SyntheticPopulation.cut(stance + 0.4 * preferenceNoise, options: k)
            let accepted = breadth == 3
                ? OptionSet8(range: 0...(k - 1))
                : OptionSet8(range: max(0, ideal - breadth)...min(k - 1, ideal + breadth))
            answers.append(Answer(question: q, option: option, accepted: accepted, importance: importance))
        }

        var blocked: [MemberID] = []
        if rng.unit() < 0.02 {
            let upper = max(2, Int(Double(members) * 1.1))
            for _ in 0..<rng.int(in: 1...3) {
                let other = firstID + MemberID(rng.int(in: 0...(upper - 1)))
                if other != id && !blocked.contains(other) { blocked.append(other) }
            }
        }

        var lastActive: Int64?
        let activity = rng.unit()
        let seconds = Int64(rng.int(in: 0...86_399))
        if activity < 0.40 {
            lastActive = asOf - Int64(rng.int(in: 0...89)) * 86_400 - seconds
        } else if activity < 0.97 {
            lastActive = asOf - Int64(rng.int(in: 90...729)) * 86_400 - seconds
        }
        return Member(
            id: id, gender: gender, seeking: seeking, age: age, ageMin: ageMin, ageMax: ageMax,
            lastActive: lastActive, answers: answers, blocked: blocked)
    }

    /// Cuts a standard-normal-ish stance into `options` bins, equally likely
    /// under a logistic approximation of the normal CDF: the number of the
    /// bin's thresholds that `x` exceeds.
    static func cut(_ x: Double, options: Int) -> Int {
        let thresholds = Model.cutThresholds[options]
        var bin = 0
        while bin < thresholds.count && x > thresholds[bin] { bin += 1 }
        return bin
    }

    /// Writes `survey.json` and `members.jsonl` into `directory`. Blocks of
    /// members are generated on every core while a serial queue writes the
    /// previous round, in order; at most two rounds are in memory. `progress`
    /// is called with the number of members handed to the writer so far.
    package func write(to directory: String, progress: (Int) -> Void = { _ in }) throws(FileError) {
        let surveyFile = try FileWriter(path: directory + "/survey.json")
        try surveyFile.write(SurveyFormat.encode(survey))
        try surveyFile.commit()

        let file = try FileWriter(path: directory + "/members.jsonl")
        let output = OrderedOutput(file)
        let blockSize = 4096
        let workers = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        var next = 0
        while next < members {
            let round = (0..<workers).map { next + $0 * blockSize }.filter { $0 < members }
            let buffers = Buffers(count: round.count)
            DispatchQueue.concurrentPerform(iterations: round.count) { worker in
                let start = round[worker]
                var bytes: [UInt8] = []
                bytes.reserveCapacity(blockSize * 4800)
                for index in start..<min(members, start + blockSize) {
                    MemberWriter.append(member(index), to: &bytes)
                }
                buffers.set(worker, bytes)
            }
            try output.enqueue((0..<round.count).map { buffers.take($0) })
            next = min(members, next + workers * blockSize)
            progress(next)
        }
        try output.finish()
    }
}

/// Writes rounds of buffers to a file on a serial queue, in the order they
/// were enqueued, while the caller generates the next round. At most two
/// rounds wait; the first write error is reported by the next call.
private final class OrderedOutput: Sendable {
    /// Used only on `queue` (the lock is never contended; it proves that).
    private let file: Mutex<FileWriter>
    private let queue = DispatchQueue(label: "kindred.synthesize.writer")
    private let slots = DispatchSemaphore(value: 2)
    /// A lock of its own, so that `enqueue`'s check does not wait for a write.
    private let error = Mutex<FileError?>(nil)

    init(_ file: sending FileWriter) { self.file = Mutex(file) }

    func enqueue(_ round: [[UInt8]]) throws(FileError) {
        if let error = error.withLock({ $0 }) { throw error }
        slots.wait()
        queue.async {
            defer { self.slots.signal() }
            guard self.error.withLock({ $0 == nil }) else { return }
            do throws(FileError) {
                try self.file.withLock { file throws(FileError) in
                    for bytes in round { try file.write(bytes) }
                }
            } catch {
                self.error.withLock { $0 = error }
            }
        }
    }

    /// Waits for the writes, then commits the file.
    func finish() throws(FileError) {
        queue.sync {}
        if let error = error.withLock({ $0 }) { throw error }
        try file.withLock { file throws(FileError) in try file.commit() }
    }
}

/// The model's fixed distributions.
private enum Model {
    static let genders: [Gender] = [.man, .woman, .nonbinary]
    static let genderWeights: [Double] = [47, 47, 6]
    static let menSeek: [GenderSet] = [[.woman], [.man], [.man, .woman], [.woman, .nonbinary]]
    static let menSeekWeights: [Double] = [87, 5, 6, 2]
    static let womenSeek: [GenderSet] = [[.man], [.woman], [.man, .woman], [.man, .nonbinary]]
    static let womenSeekWeights: [Double] = [86, 5, 7, 2]
    static let nonbinarySeek: [GenderSet] = [[.man, .woman, .nonbinary], [.nonbinary], [.woman, .nonbinary], [.man, .nonbinary]]
    static let nonbinarySeekWeights: [Double] = [40, 20, 20, 20]
    /// Skewed towards "somewhat".
    static let importanceWeights: [Double] = [8, 22, 38, 24, 8]
    /// For 2 ... 8 options.
    static let optionCountWeights: [Double] = [15, 20, 30, 18, 8, 5, 4]
    /// For k options, the k - 1 stances where the logistic CDF
    /// `1 / (1 + exp(-1.7 x / 1.2))` crosses 1/k, 2/k, ...
    static let cutThresholds: [[Double]] = (0...8).map { k in
        k < 2 ? [] : (1..<k).map { i in
            let p = Double(i) / Double(k)
            return log(p / (1 - p)) * 1.2 / 1.7
        }
    }
}

/// One output buffer per worker of a round. Each worker writes only its own
/// index (one array move under the lock, once per round), and the writer
/// reads them after `concurrentPerform` returns.
private final class Buffers: Sendable {
    private let storage: Mutex<[[UInt8]]>
    init(count: Int) { storage = Mutex(Array(repeating: [], count: count)) }
    func set(_ index: Int, _ bytes: [UInt8]) { storage.withLock { $0[index] = bytes } }
    func take(_ index: Int) -> [UInt8] { storage.withLock { $0[index] } }
}
