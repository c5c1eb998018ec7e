import Foundation
import MemberFormat
import Scoring

/// The reading and parsing half of an import: one thread reads the members
/// file and cuts it into chunks of consecutive lines; `parsers` threads
/// parse chunks in parallel; ``next()`` hands the parsed chunks back in
/// file order.
///
/// Why parallel: parsing a 4.6 KB member line costs ~45 µs of CPU, several
/// times what storing it costs (MySQL spends ~8 µs per member in
/// 1000-member transactions), so one parsing thread caps an import at the
/// parser's speed. Measured on the 100k generated file, two cores: 23,000
/// members/s with one parsing thread, 27,000-32,000 with two.
///
/// Memory is bounded: at most `2 * parsers + 2` chunks exist at once
/// (the reader waits for a permit before cutting the next one).
final class ImportPipeline: @unchecked Sendable {
    // @unchecked Sendable: the mutable state is `pending` and `nextSequence`,
    // touched only by the consumer thread; everything shared between
    // threads is a channel, the limiter, or immutable.

    /// Raw lines cut by the reader thread.
    struct Chunk: Sendable {
        var sequence: Int
        var bytes: [UInt8] = []
        /// The end offset of each line in `bytes`.
        var ends: [Int] = []
        var firstLine = 1
        /// Bytes of the file consumed up to the end of this chunk.
        var bytesRead = 0
        var failure: FileError?
    }

    /// A chunk's members and rejections.
    struct Parsed: Sendable {
        var sequence: Int
        var members: [Member] = []
        var rejections: [LineRejection] = []
        var blankLines = 0
        var lastLine = 0
        var bytesRead = 0
        var failure: FileError?
    }

    private let chunks: BoundedChannel<Chunk>
    private let results: BoundedChannel<Parsed>
    private let permits: PermitPool
    private let finished: [Completion]
    private var pending: [Int: Parsed] = [:]
    private var nextSequence = 0
    private var done = false

    /// Starts the threads. `reader` must not be used by the caller afterwards.
    init(reader: Importer.SendableReader, survey: Survey, linesPerChunk: Int, parsers: Int) {
        let parserCount = max(1, parsers)
        let limit = 2 * parserCount + 2
        chunks = BoundedChannel(capacity: limit)
        results = BoundedChannel(capacity: limit)
        permits = PermitPool(limit)
        finished = (0...parserCount).map { _ in Completion() }

        let (chunks, results, permits, finished) = (chunks, results, permits, finished)
        Self.start(name: "kindred-import-reader") {
            Self.read(reader.reader, linesPerChunk: linesPerChunk, into: chunks, permits: permits)
            finished[0].signal()
        }
        let remaining = Counter(parserCount)
        for index in 1...parserCount {
            Self.start(name: "kindred-import-parser-\(index)") {
                let parser = MemberParser(survey: survey)
                while let chunk = chunks.receive() {
                    guard results.send(Self.parse(chunk, with: parser)) else { break }
                }
                if remaining.decrement() == 0 { results.close() }
                finished[index].signal()
            }
        }
    }

    /// The next chunk in file order, or `nil` after the last.
    func next() -> Parsed? {
        while !done {
            if let parsed = pending.removeValue(forKey: nextSequence) {
                nextSequence += 1
                permits.release()
                if parsed.failure != nil { done = true }
                return parsed
            }
            guard let parsed = results.receive() else {
                done = true
                break
            }
            pending[parsed.sequence] = parsed
        }
        return nil
    }

    /// Stops every thread and waits for them (call once, when done or on failure).
    func shutDown() {
        permits.cancel()
        chunks.close()
        results.close()
        for completion in finished { completion.wait() }
    }

    // MARK: - Threads

    private static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.name = name
        thread.stackSize = 1 << 22
        thread.start()
    }

    private static func read(
        _ reader: LineReader, linesPerChunk: Int, into chunks: BoundedChannel<Chunk>, permits: PermitPool
    ) {
        struct Stop: Error {}
        var sequence = 0
        var bytesRead = 0
        var chunk = Chunk(sequence: 0)
        func emit() -> Bool {
            chunk.bytesRead = bytesRead
            guard permits.acquire(), chunks.send(chunk) else { return false }
            sequence += 1
            chunk = Chunk(sequence: sequence)
            return true
        }
        do {
            try reader.forEachLine { (line: UnsafeBufferPointer<UInt8>, number: Int) throws(Stop) in
                if chunk.ends.isEmpty {
                    chunk.firstLine = number
                    chunk.bytes.reserveCapacity(min(8 << 20, max(1 << 16, line.count * linesPerChunk * 9 / 8)))
                    chunk.ends.reserveCapacity(linesPerChunk)
                }
                chunk.bytes.append(contentsOf: line)
                chunk.ends.append(chunk.bytes.count)
                bytesRead += line.count + 1
                if chunk.ends.count >= linesPerChunk {
                    guard emit() else { throw Stop() }
                }
            }
        } catch {
            switch error {
            case .file(let failure): chunk.failure = failure
            case .body: 
                chunks.close()
                return
            }
        }
        if !chunk.ends.isEmpty || chunk.failure != nil { _ = emit() }
        chunks.close()
    }

    private static func parse(_ chunk: Chunk, with parser: MemberParser) -> Parsed {
        var parsed = Parsed(sequence: chunk.sequence, bytesRead: chunk.bytesRead, failure: chunk.failure)
        parsed.members.reserveCapacity(chunk.ends.count)
        parsed.lastLine = chunk.firstLine + chunk.ends.count - 1
        chunk.bytes.withUnsafeBufferPointer { bytes in
            var start = 0
            for (index, end) in chunk.ends.enumerated() {
                let line = UnsafeBufferPointer(rebasing: bytes[start..<end])
                start = end
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                    parsed.blankLines += 1
                    continue
                }
                switch parser.parse(line) {
                case .success(let member): parsed.members.append(member)
                case .failure(let error):
                    parsed.rejections.append(LineRejection(line: chunk.firstLine + index, error: error))
                }
            }
        }
        return parsed
    }
}

/// A counting semaphore that can be cancelled: ``acquire()`` then returns false.
final class PermitPool: @unchecked Sendable {
    // @unchecked Sendable: `available` and `cancelled` are only touched while
    // `condition` is locked.
    private let condition = NSCondition()
    private var available: Int
    private var cancelled = false

    init(_ permits: Int) { available = permits }

    func acquire() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while available == 0 && !cancelled { condition.wait() }
        guard !cancelled else { return false }
        available -= 1
        return true
    }

    func release() {
        condition.lock()
        available += 1
        condition.signal()
        condition.unlock()
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}

/// A thread-safe countdown.
final class Counter: @unchecked Sendable {
    // @unchecked Sendable: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value: Int
    init(_ value: Int) { self.value = value }
    func decrement() -> Int { lock.withLock { value -= 1; return value } }
}
