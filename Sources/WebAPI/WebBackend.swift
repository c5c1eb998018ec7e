import CoreMetrics
import Foundation
import KindredCore
import KindredSupport
import Logging
import MemberFormat
import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Synchronization
import WorkQueue

/// The web backend's logic, independent of HTTP: every operation a route
/// needs, run on plain threads (never on Swift's cooperative pool) with
/// per-thread MySQL and queue connections, over the same snapshot, store
/// and generator code the worker daemon uses.
package final class WebBackend: Sendable {
    package let core: GenerationCore
    /// The queue this backend writes to: deletion and block marks, rebuild
    /// requests (over each I/O thread's `.web` queue connection).
    package let queue: WorkQueue
    package let settings: WebSettings
    package let cache: RankedSetCache
    private let io: BlockingExecutor<IOThread>
    private let generation: BlockingExecutor<Generator>
    private let deletions: DeletionFilter
    /// Requests and server errors per minute in this process (the dashboard's chart).
    let webThroughput = WebThroughput()
    private let answersVersions: AnswersVersionCache
    /// The batched path for pages of cached sets (nil without a cache).
    private let reader: BatchingExecutor<IOThread, PageRequest, CachedRead>?
    private let answeredInBatches = Atomic<Int>(0)
    /// Sets read whole from their shard (not cached, or a copy the change
    /// log could not bring up to date).
    private let wholeReads = Atomic<Int>(0)

    package init(core: GenerationCore, queue: WorkQueue, settings: WebSettings = WebSettings()) {
        self.core = core
        self.queue = queue
        self.settings = settings
        cache = RankedSetCache(capacity: settings.cachedSets)
        let deletions = DeletionFilter()
        self.deletions = deletions
        let answersVersions = AnswersVersionCache()
        self.answersVersions = answersVersions
        if settings.cachedSets > 0 {
            let pages = CachedPageReader(core: core, cache: cache, deletions: deletions, answersVersions: answersVersions)
            reader = BatchingExecutor(
                name: "web-read", threads: settings.readThreads, maxBatch: settings.readBatch,
                makeContext: { _ in IOThread(core: core, queue: queue, retry: settings.mysqlRetry) },
                process: { thread, requests in pages.read(requests, thread) })
        } else {
            reader = nil
        }
        io = BlockingExecutor(name: "web-io", threads: settings.ioThreads) { _ in
            IOThread(core: core, queue: queue, retry: settings.mysqlRetry)
        }
        generation = BlockingExecutor(name: "web-generate", threads: settings.generationThreads) { _ in
            // The member's own set only: publishing changes is the worker's job.
            Generator(core: core, options: Generator.Options(publish: false), session: core.sessions.storeSession())
        }
    }

    /// Batches the batched path took, the requests in them, and the ones it
    /// answered (the others took the full path).
    package var batchedReads: (batches: Int, requests: Int, answered: Int) {
        guard let statistics = reader?.statistics else { return (0, 0, 0) }
        return (statistics.batches, statistics.items, answeredInBatches.load(ordering: .relaxed))
    }

    /// Sets read from their shards: whole (every entry, then ranked), and
    /// cached copies brought up to date from their change log instead.
    package var setReads: (whole: Int, delta: Int) { (wholeReads.load(ordering: .relaxed), cache.stats.applied) }

    /// Stops the threads (after the HTTP server stopped).
    package func shutdown() {
        reader?.shutdown(timeout: .seconds(5))
        io.shutdown(timeout: .seconds(5))
        generation.shutdown(timeout: .seconds(30))
    }

    // MARK: Matches

    /// A page of `member`'s matches, regenerating the set on the spot when it
    /// is missing or stale.
    package func matches(_ member: MemberID, offset: Int, limit: Int) async throws(APIError) -> MatchesPage {
        // A cached set that is still current is served by the batched path;
        // everything else (not cached, stale, missing, a failing dependency)
        // takes the full path below, which reports it.
        if let reader {
            switch await reader.submit(PageRequest(member: member, offset: offset, limit: limit)) {
            case .page(let page):
                answeredInBatches.add(1, ordering: .relaxed)
                return page
            case .deleted:
                answeredInBatches.add(1, ordering: .relaxed)
                throw .notFound(member)
            case .fullPath, nil: break
            }
        }
        let first = try await onIO { [self] thread throws(APIError) in try readPage(member, offset: offset, limit: limit, thread) }
        let reason: String
        switch first {
        case .page(let page): return page
        case .regenerate(let why): reason = why
        }
        core.logger.debug("regenerating on read", metadata: ["member": "\(member)", "reason": "\(reason)"])
        try await regenerate(member)
        let second = try await onIO { [self] thread throws(APIError) in try readPage(member, offset: offset, limit: limit, thread) }
        guard case .page(var page) = second else {
            // Changed again meanwhile (a concurrent update or deletion): the next read settles it.
            throw .unavailable("matches for member \(member) are being rebuilt; try again", retryAfter: 1)
        }
        page.regenerated = true
        return page
    }

    enum ReadResult: Sendable {
        case page(MatchesPage)
        case regenerate(String)
    }

    private func readPage(_ member: MemberID, offset: Int, limit: Int, _ thread: IOThread) throws(APIError) -> ReadResult {
        // The marks' version is asked of the queue's Redis first and read
        // after the shard's meta, so the two round trips overlap.
        let pending = deletions.begin(thread)
        var marks: DeletionFilter.Marks?
        defer { if marks == nil { _ = deletions.finish(pending, thread) } }
        let answersVersion = try knownAnswersVersion(member, thread)
        let shard: UInt32?
        do {
            shard = try core.directory.shard(of: member, in: thread.session.store)
        } catch {
            throw mysqlDown(error)
        }
        guard let shard else {
            marks = deletions.finish(pending, thread)
            if marks!.isDeleted(member) { throw .notFound(member) }
            return .regenerate("no shard")
        }
        // The meta, and the changes since the cached copy when there is one.
        let copy = cache.copyMeta(member, shard: shard)
        let read: ScoreStore.MetaRead
        do {
            // Watched when sets are cached here: placements then log the changes a copy follows.
            read = try core.scores.readMeta(member, shard: shard, since: copy, watch: cache.capacity > 0)
        } catch {
            marks = deletions.finish(pending, thread)
            if marks!.isDeleted(member) { throw .notFound(member) }
            throw shardDown(member, shard: shard, error, thread)
        }
        let known = deletions.finish(pending, thread)
        marks = known
        if known.isDeleted(member) { throw .notFound(member) }
        guard let meta = read.meta else { return .regenerate("no set") }
        if meta.answersVersion != answersVersion { return .regenerate("stale") }
        let ranked: [UInt64]
        var setMeta = meta
        if let cached = cache.lookup(member, shard: shard, meta: meta) {
            ranked = cached.ranked
            setMeta = cached.meta
        } else if let copy, let changes = read.changes,
            let applied = cache.apply(member, shard: shard, from: copy, to: meta, changes: changes)
        {
            ranked = applied
        } else {
            wholeReads.add(1, ordering: .relaxed)
            let set: ScoreStore.StoredSet?
            do {
                set = try core.scores.readSet(member, shard: shard, cutToLimit: false)
            } catch {
                throw shardDown(member, shard: shard, error, thread)
            }
            guard let set else { return .regenerate("no set") }
            ranked = set.matches.map(RankedSetCache.key)
            setMeta = set.meta
            cache.store(member, shard: shard, meta: set.meta, ranked: ranked)
        }
        let visible = Self.visible(member, shard: shard, meta: setMeta, ranked: ranked, marks: known, cache: cache, core: core)
        return .page(Self.page(member, visible: visible, offset: offset, limit: limit, generatedAt: setMeta.generatedAt))
    }

    /// The visible ranking of a set (``Visibility``), from the cache when it
    /// was computed under the same snapshot and marks.
    static func visible(
        _ member: MemberID, shard: UInt32, meta: ScoreStore.SetMeta, ranked: [UInt64], marks: DeletionFilter.Marks,
        cache: RankedSetCache, core: GenerationCore
    ) -> [UInt64] {
        let limit = meta.limit > 0 ? meta.limit : core.settings.scoring.topN
        let key = RankedSetCache.ViewKey(snapshot: core.population.version, marks: marks.version)
        if let view = cache.view(member, shard: shard, meta: meta, key: key) { return view }
        let (view, snapshot) = Visibility.visible(member, ranked: ranked, limit: limit, marks: marks, population: core.population)
        cache.storeView(member, shard: shard, meta: meta, key: RankedSetCache.ViewKey(snapshot: snapshot, marks: marks.version), view: view)
        return view
    }

    /// The page `offset ..< offset + limit` of a visible ranking (the total
    /// counts all of it).
    static func page(_ member: MemberID, visible: [UInt64], offset: Int, limit: Int, generatedAt: Int64) -> MatchesPage {
        let start = min(offset, visible.count)
        let end = min(visible.count, start + limit)
        var matches: [Match] = []
        matches.reserveCapacity(end - start)
        for key in visible[start..<end] {
            matches.append(Match(id: RankedSetCache.id(key), tenths: RankedSetCache.tenths(key)))
        }
        return MatchesPage(
            member: member, total: visible.count, offset: offset, limit: limit, generatedAt: generatedAt, regenerated: false,
            matches: matches)
    }

    /// Regenerates `member`'s set on a generation thread.
    private func regenerate(_ member: MemberID) async throws(APIError) {
        let result: Result<GenerationOutcome, GenerationFailure>
        do {
            // The generator's shard assignment asks MySQL, so a shard released elsewhere (an eviction) is seen.
            result = try await generation.run { generator in
                Result { () throws(GenerationFailure) in try generator.regenerate(member) }
            }
        } catch {
            throw .unavailable("the server is shutting down", retryAfter: settings.retryAfterSeconds)
        }
        switch result {
        case .success(let outcome):
            if !outcome.rebuild.isEmpty {
                _ = try? await onIO { thread throws(APIError) in
                    try? thread.queueCall { _ = try thread.queue.enqueue(Array(Set(outcome.rebuild)), priority: .repair, on: $0) }
                }
            }
            if outcome.kind == .removed { throw .notFound(member) }
            return
        case .failure(let failure):
            switch failure.kind {
            case .shardUnavailable, .busy:
                core.logger.warning("regeneration on read failed: shard unavailable", metadata: ["member": "\(member)", "error": "\(failure.message)"])
                await enqueue(member)
                throw .unavailable(
                    "the shard of member \(member) is unavailable; a rebuild is queued", retryAfter: settings.retryAfterSeconds)
            case .mysqlUnavailable:
                throw .unavailable("the member store is unavailable", retryAfter: settings.retryAfterSeconds)
            case .badData:
                core.logger.error("regeneration on read failed: stored data breaks the rules", metadata: ["member": "\(member)", "reason": "\(failure.message)"])
                throw .internalError("matches for member \(member) cannot be computed from the stored data")
            case .failed:
                core.logger.error("regeneration on read failed", metadata: ["member": "\(member)", "error": "\(failure.message)"])
                await enqueue(member)
                throw .unavailable("matches for member \(member) could not be rebuilt now; a rebuild is queued", retryAfter: settings.retryAfterSeconds)
            }
        }
    }

    private func enqueue(_ member: MemberID) async {
        _ = try? await onIO { thread throws(APIError) in thread.enqueue(member) }
    }

    // MARK: Pair score

    package func pairScore(_ member: MemberID, _ other: MemberID) async throws(APIError) -> PairScoreResult {
        let (a, b, blocked) = try await onIO { [self] thread throws(APIError) in
            let marks = deletions.current(thread)
            if marks.isDeleted(member) { throw APIError.notFound(member) }
            if marks.isDeleted(other) { throw APIError.notFound(other) }
            return (try knownMember(member, thread), try knownMember(other, thread), marks.blocks(member, other))
        }
        // A block acknowledged by any process counts before this snapshot holds it.
        let outcome: PairOutcome = blocked && member != other
            ? .excluded(.blocked) : core.survey.outcome(a, b, settings: core.settings.scoring)
        return PairScoreResult(member: member, other: other, outcome: outcome)
    }

    // MARK: Member events

    /// Upserts a member from one import-format line; queues an interactive
    /// rebuild. Returns whether the rebuild could be queued (if not, the
    /// repair sweep finds the stale set and the unpublished change).
    ///
    /// New blocks are marked on the queue's Redis before MySQL is written,
    /// so from the moment this answers no read in any process shows either
    /// member of the block to the other; an unblock's marks go after. The
    /// member gets a shard, as a login does: a member who just wrote their
    /// profile is active, and the rebuild writes their set.
    package func upsert(_ member: MemberID, document: String) async throws(APIError) -> Bool {
        try await upsert(member, document: Array(document.utf8))
    }

    /// ``upsert(_:document:)`` for the request body's bytes as received:
    /// the parser rejects invalid UTF-8 and nesting past its limit (422).
    package func upsert(_ member: MemberID, document: [UInt8]) async throws(APIError) -> Bool {
        let parsed: Member
        switch document.withUnsafeBufferPointer({ MemberParser(survey: core.survey).parse($0) }) {
        case .success(let value): parsed = value
        case .failure(let error): throw .invalidMember(error.description)
        }
        guard parsed.id == member else {
            throw .invalidMember("id: the document's id \(parsed.id) is not the path's \(member)")
        }
        return try await onIO { [self] thread throws(APIError) in
            let survey = core.survey
            let previous: Member?
            do {
                previous = try thread.database { try $0.members.member(member) }
            } catch {
                throw mysqlDown(error)
            }
            let before = Set(previous?.blocked ?? [])
            let after = Set(parsed.blocked)
            let added = after.subtracting(before).filter { $0 != member }.sorted()
            let removed = before.subtracting(after).sorted()
            if !added.isEmpty {
                do {
                    try deletions.markBlocked(member, added, thread)
                } catch {
                    throw APIError.unavailable(
                        "the queue is unavailable, so a new block cannot be made visible now", retryAfter: settings.retryAfterSeconds)
                }
            }
            do {
                let stored = try thread.database { session -> Member? in
                    let repository = session.members
                    _ = try repository.upsert([parsed])
                    return try repository.member(member)
                }
                // This process's snapshot sees the change at once (reads compare sets' answers versions with it).
                if let stored { _ = try? core.population.upsert(stored, version: AnswersVersion.of(stored, survey: survey)) }
            } catch {
                if !added.isEmpty { deletions.unmarkBlocked(member, added, thread) }
                throw mysqlDown(error)
            }
            if !removed.isEmpty { deletions.unmarkBlocked(member, removed, thread) }
            if deletions.current(thread).isDeleted(member) {
                // A re-registration under a deleted id: it is live again.
                deletions.unmarkDeleted(member, thread)
            }
            do {
                _ = try core.directory.assign(member, in: thread.session.store)
            } catch let error as MemberStoreError where error.code == .noActiveShard {
                core.logger.warning("upsert: no active shard to assign", metadata: ["member": "\(member)"])
            } catch {
                core.logger.warning("upsert: could not assign a shard now (the job does)", metadata: ["member": "\(member)"])
            }
            return thread.enqueue(member)
        }
    }

    /// Records a login; a member without a current set gets a shard and an
    /// interactive rebuild.
    package func login(_ member: MemberID, at time: Date = Date()) async throws(APIError) -> LoginOutcome {
        try await onIO { [self] thread throws(APIError) in
            if deletions.current(thread).isDeleted(member) { throw APIError.notFound(member) }
            let found: Bool
            do {
                found = try thread.database {
                    try $0.members.recordActivity(member, at: Int64(time.timeIntervalSince1970))
                }
            } catch {
                throw mysqlDown(error)
            }
            guard found else { throw APIError.notFound(member) }
            let record = try knownMember(member, thread)
            var current = false
            do {
                core.directory.forget(member)
                if let shard = try core.directory.shard(of: member, in: thread.session.store) {
                    if let meta = try? core.scores.readMeta(member, shard: shard) {
                        current = meta.answersVersion == String(AnswersVersion.of(record, survey: core.survey))
                    }
                } else {
                    _ = try core.directory.assign(member, in: thread.session.store)
                }
            } catch let error as MemberStoreError where error.code == .noActiveShard {
                core.logger.warning("login: no active shard to assign", metadata: ["member": "\(member)"])
            } catch {
                throw mysqlDown(error)
            }
            if current { return .current }
            thread.enqueue(member)
            return .rebuildQueued
        }
    }

    /// Deletes a member: hidden from every read at once (a deletion mark),
    /// tombstoned in MySQL, and queued so the worker removes their set and
    /// their entries in everyone else's.
    package func delete(_ member: MemberID) async throws(APIError) {
        try await onIO { [self] thread throws(APIError) in
            do {
                try deletions.markDeleted(member, thread)
            } catch {
                throw APIError.unavailable("the queue is unavailable, so a deletion cannot be made visible now", retryAfter: settings.retryAfterSeconds)
            }
            let deleted: Bool
            do {
                deleted = try thread.database { try $0.members.delete(member) }
            } catch {
                deletions.unmarkDeleted(member, thread)
                throw mysqlDown(error)
            }
            guard deleted else {
                // Not a live member: an unknown id, or one already deleted (still marked then).
                let stillMarked = (try? thread.database { try $0.members.isDeleted(member) }) ?? false
                if !stillMarked { deletions.unmarkDeleted(member, thread) }
                throw APIError.notFound(member)
            }
            cache.remove(member)
            thread.enqueue(member)
        }
    }

    // MARK: Health

    /// The probes' dependency checks (``DependencyProbes``), made on first use.
    private let probes = OnFirstUse<DependencyProbes>()

    /// Checks every dependency for `/readyz` and `/healthz` and records
    /// `kindred_shard_up`: each on its own connection with short timeouts,
    /// off the I/O threads, shared by concurrent probes and reused for a
    /// second; a dependency that has not answered within the probe's bound
    /// (2 s) is reported unavailable, so a probe answers within it even
    /// when a dependency hangs.
    package func health() async -> HealthReport {
        let found = await probes.value { DependencyProbes(core: core, queue: queue) }.check()
        for shard in found.shards {
            core.metrics.shardUp(shard.id).record(shard.up ? 1 : 0)
        }
        return HealthReport(
            mysql: found.mysql ? "ok" : "unavailable", queue: found.queue ? "ok" : "unavailable",
            shards: found.shards.map { ($0.id, $0.up ? "ok" : "unavailable") }, snapshotMembers: core.population.read { $0.count },
            snapshotAgeSeconds: Double(core.population.age.components.seconds),
            directoryCached: core.directory.cachedAssignments, snapshotLoaded: true)
    }

    /// The member as the snapshot knows them, else from MySQL (a member
    /// newer than the snapshot); 404 when neither does.
    func member(_ id: MemberID) async throws(APIError) -> Member {
        try await onIO { [self] thread throws(APIError) in
            if deletions.current(thread).isDeleted(id) { throw APIError.notFound(id) }
            return try knownMember(id, thread)
        }
    }

    // MARK: Plumbing

    /// The answers version a current set of `id` carries, from
    /// the snapshot: cached per member until the snapshot next changes, so a
    /// page does not rebuild the member's record to hash it.
    private func knownAnswersVersion(_ id: MemberID, _ thread: IOThread) throws(APIError) -> String {
        if let found = answersVersions.snapshotAnswersVersion(of: id, core) { return found }
        return String(AnswersVersion.of(try knownMember(id, thread), survey: core.survey))
    }

    private func knownMember(_ id: MemberID, _ thread: IOThread) throws(APIError) -> Member {
        if let record = core.population.read({ $0.member(id) }) { return record }
        let stored: Member?
        do {
            stored = try thread.database { try $0.members.member(id) }
        } catch let error as MemberStoreError where error.code == .corruptRow {
            core.logger.error("stored member breaks the rules", metadata: ["member": "\(id)", "reason": "\(error.message)"])
            throw .internalError("member \(id) cannot be read from the stored data")
        } catch {
            throw mysqlDown(error)
        }
        guard let stored else { throw .notFound(id) }
        return stored
    }

    private func mysqlDown(_ error: any Error) -> APIError {
        core.logger.warning("MySQL unavailable", metadata: ["error": "\(error)"])
        return .unavailable("the member store is unavailable", retryAfter: settings.retryAfterSeconds)
    }

    private func shardDown(_ member: MemberID, shard: UInt32, _ error: ScoreStoreError, _ thread: IOThread) -> APIError {
        core.metrics.shardErrors(shard).increment()
        core.logger.warning("shard unavailable on read", metadata: ["member": "\(member)", "shard": "\(shard)", "error": "\(error)"])
        thread.enqueue(member)
        return .unavailable("the shard of member \(member) is unavailable; a rebuild is queued", retryAfter: settings.retryAfterSeconds)
    }

    func onIO<T: Sendable>(_ body: @escaping @Sendable (IOThread) throws(APIError) -> T) async throws(APIError) -> T {
        let result: Result<T, APIError>
        do {
            result = try await io.run { thread in Result { () throws(APIError) in try body(thread) } }
        } catch {
            throw .unavailable("the server is shutting down", retryAfter: settings.retryAfterSeconds)
        }
        return try result.get()
    }
}
