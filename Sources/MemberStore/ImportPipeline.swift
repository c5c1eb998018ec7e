import Foundation
import KindredSupport
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
///
/// Not Sendable: `pending`, `nextSequence` and `done` belong to the consumer
/// thread; what the threads share is a channel, the permits, or immutable.
final class ImportPipeline {

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
    private let threads: [ThreadHandle]
    private var pending: [Int: Parsed] = [:]
    private var nextSequence = 0
    private var done = false

    /// Starts the threads. `reader` must not be used by the caller afterwards.
    init(reader: sending LineReader, survey: Survey, linesPerChunk: Int, parsers: Int) {
        let parserCount = max(1, parsers)
        let limit = 2 * parserCount + 2
        chunks = BoundedChannel(capacity: limit)
        results = BoundedChannel(capacity: limit)
        permits = PermitPool(limit)

        threads = Self.start(
            reader: reader, survey: survey, linesPerChunk: linesPerChunk, parsers: parserCount, chunks: chunks,
            results: results, permits: permits)
    }

    /// Starts the reader thread and `parsers` parser threads.
    private static func start(
        reader: sending LineReader, survey: Survey, linesPerChunk: Int, parsers: Int, chunks: BoundedChannel<Chunk>,
        results: BoundedChannel<Parsed>, permits: PermitPool
    ) -> [ThreadHandle] {
        var threads = [
            startThread(name: "kindred-import-reader", stackSize: stackSize) {
                read(reader, linesPerChunk: linesPerChunk, into: chunks, permits: permits)
            }
        ]
        let remaining = Locked(parsers)
        for index in 1...parsers {
            threads.append(startThread(name: "kindred-import-parser-\(index)", stackSize: stackSize) {
                let parser = MemberParser(survey: survey)
                while let chunk = chunks.receive() {
                    guard results.send(parse(chunk, with: parser)) else { break }
                }
                let left = remaining.withLock { remaining in
                    remaining -= 1
                    return remaining
                }
                if left == 0 { results.close() }
            })
        }
        return threads
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
        for thread in threads { thread.join() }
    }

    // MARK: - Threads

    private static let stackSize = 1 << 22

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
final class PermitPool: Sendable {
    private let state: Monitor<(available: Int, cancelled: Bool)>

    init(_ permits: Int) { state = Monitor((permits, false)) }

    func acquire() -> Bool {
        state.withLock { state, condition in
            while state.available == 0 && !state.cancelled { condition.wait(&state) }
            guard !state.cancelled else { return false }
            state.available -= 1
            return true
        }
    }

    func release() {
        state.withLock { state, condition in
            state.available += 1
            condition.signal()
        }
    }

    func cancel() {
        state.withLock { state, condition in
            state.cancelled = true
            condition.broadcast()
        }
    }
}
