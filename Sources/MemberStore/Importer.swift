import Foundation
import KindredSupport
import MariaDBClient
import MemberFormat
import Scoring

/// Where an import stands, reported after every committed batch.
package struct ImportProgress: Sendable, Hashable {
    /// Bytes of the members file read so far (the parser runs up to two
    /// batches ahead of what is stored).
    package var bytesRead: Int = 0
    /// The members file's size; `nil` when reading standard input.
    package var totalBytes: Int?
    /// Lines read (blank ones included).
    package var lines = 0
    /// Members stored (valid lines written; a repeated id counts each time).
    package var members = 0
    /// Lines rejected.
    package var rejected = 0
    /// Transactions committed.
    package var batches = 0
    /// Time since the import started.
    package var elapsed: Duration = .zero

    package init() {}

    /// Members stored per second so far.
    package var membersPerSecond: Double {
        let seconds = elapsed.inSeconds
        return seconds > 0 ? Double(members) / seconds : 0
    }

    /// The fraction of the file read, 0...1, when the size is known.
    package var fraction: Double? {
        guard let totalBytes, totalBytes > 0 else { return nil }
        return min(1, Double(bytesRead) / Double(totalBytes))
    }
}

/// The outcome of a finished import.
package struct ImportSummary: Sendable, Hashable {
    /// The final progress: lines, members stored, rejections, batches, time.
    package var progress: ImportProgress
    /// Blank lines skipped.
    package var blankLines: Int
    /// True when this import stored the survey (the database had none).
    package var storedSurvey: Bool
    /// True when `shouldStop` ended the import early: every line up to
    /// `progress.lines` is committed (or rejected), nothing after it is.
    package var interrupted = false
}

/// An import that stopped part-way: what was stored before the failure,
/// and why. Every committed batch is whole (members with their blocks);
/// importing the same file again is safe and completes the job.
package struct ImportFailure: Error, CustomStringConvertible {
    package let progress: ImportProgress
    package let underlying: any Error

    package var description: String {
        "\(underlying); stopped after storing \(progress.members) members in \(progress.batches) batches "
            + "(\(progress.lines) lines read); importing the same file again is safe"
    }
}

/// Imports a survey file and a JSON Lines members file (SCORING.md's
/// format) into MySQL.
///
/// - The survey is stored on the first import and must match afterwards
///   (``SurveyStore``).
/// - Members are upserted in batches of the valid members among
///   ``Options/batchSize`` consecutive lines, one transaction per batch (``MemberRepository/upsert(_:)``): a batch
///   lands whole or not at all, so no member is ever half-stored.
/// - Every rejected line goes to `onReject` with its line number and reason,
///   and the import goes on.
/// - When the connection is lost (MySQL restarted, failed over), the
///   importer reconnects with backoff (``Options/retry``) and writes the
///   same batch again, which is idempotent; when the policy's budget runs
///   out it throws ``ImportFailure``.
///
/// Threads: `run` blocks the calling thread, which owns the connection and
/// receives every callback, in file order. Other threads read the file and
/// parse chunks of it in parallel, a few batches ahead
/// (``Options/parserThreads``), so parsing overlaps the database round trips.
package final class Importer {
    package struct Options: Sendable {
        /// Valid members per transaction.
        package var batchSize: Int
        /// Reconnecting and retrying a batch when MySQL goes away.
        package var retry: RetryPolicy
        /// Threads parsing lines (one more reads the file).
        package var parserThreads: Int

        package init(
            batchSize: Int = 1000, retry: RetryPolicy = .default,
            parserThreads: Int = min(4, ProcessInfo.processInfo.activeProcessorCount)
        ) {
            precondition(batchSize > 0, "batchSize must be positive")
            self.batchSize = batchSize
            self.retry = retry
            self.parserThreads = max(1, parserThreads)
        }
    }

    @_spi(Testing) public let connection: MariaDBConnection
    package let options: Options

    @_spi(Testing) public init(connection: MariaDBConnection, options: Options = Options()) {
        self.connection = connection
        self.options = options
    }

    /// Runs the import.
    ///
    /// - Parameters:
    ///   - onReject: each rejected line, in line order.
    ///   - onProgress: after each committed batch.
    ///   - onRetry: before each reconnect or retry (MySQL went away).
    ///   - shouldStop: asked after each committed batch; true ends the import
    ///     there (a graceful stop: the batch in flight is finished, the
    ///     summary says `interrupted`).
    /// - Throws: `MemberFormat.ImportError` (unreadable files, a malformed
    ///   survey), ``MemberStoreError`` (a survey that differs from the stored
    ///   one, a schema that needs `kindred migrate`) before any member is
    ///   written; ``ImportFailure`` when writing stops part-way.
    package func run(
        surveyPath: String,
        membersPath: String,
        onReject: (LineRejection) -> Void = { _ in },
        onProgress: (ImportProgress) -> Void = { _ in },
        onRetry: (RetryEvent) -> Void = { _ in },
        shouldStop: () -> Bool = { false }
    ) throws -> ImportSummary {
        let clock = ContinuousClock()
        let started = clock.now
        let survey = try SurveyFormat.load(path: surveyPath)
        let (reader, size) = try Self.openMembers(membersPath)
        let storedSurvey = try connection.withRetry(policy: options.retry, onRetry: onRetry) { connection in
            try Migrator.requireUpToDate(connection)
            return try SurveyStore.store(survey, connection)
        }
        let repository = MemberRepository(connection: connection, survey: survey)

        var progress = ImportProgress()
        progress.totalBytes = size
        let pipeline = ImportPipeline(
            reader: reader, survey: survey, linesPerChunk: options.batchSize, parsers: options.parserThreads)
        defer { pipeline.shutDown() }

        var blankLines = 0
        while let batch = pipeline.next() {
            for rejection in batch.rejections { onReject(rejection) }
            progress.rejected += batch.rejections.count
            if let failure = batch.failure {
                throw ImportFailure(progress: progress, underlying: failure)
            }
            if !batch.members.isEmpty {
                do {
                    try connection.withRetry(policy: options.retry, onRetry: onRetry) { _ in
                        try repository.upsert(batch.members)
                    }
                } catch {
                    throw ImportFailure(progress: progress, underlying: error)
                }
                progress.members += batch.members.count
                progress.batches += 1
            }
            progress.lines = batch.lastLine
            progress.bytesRead = batch.bytesRead
            blankLines += batch.blankLines
            progress.elapsed = clock.now - started
            onProgress(progress)
            if shouldStop() {
                return ImportSummary(progress: progress, blankLines: blankLines, storedSurvey: storedSurvey, interrupted: true)
            }
        }
        if let total = progress.totalBytes { progress.bytesRead = total }
        progress.elapsed = clock.now - started
        return ImportSummary(progress: progress, blankLines: blankLines, storedSurvey: storedSurvey)
    }

    // MARK: - Opening the file

    /// The members file's reader (handed on `sending` to the pipeline's
    /// reading thread) and its size when known.
    static func openMembers(_ path: String) throws(ImportError) -> (reader: LineReader, size: Int?) {
        let reader: LineReader
        do { reader = try LineReader(path: path) } catch { throw .file(error) }
        var size: Int?
        if path != "-", let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let bytes = attributes[.size] as? NSNumber
        {
            size = bytes.intValue
        }
        return (reader, size)
    }
}
