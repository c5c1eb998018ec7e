import CoreMetrics
import Foundation
import KindredCore
import KindredLogging
import KindredSupport
import Logging
import RedisClient
import ScoreStore
import Scoring
import WorkQueue

/// One generation worker: a plain thread that takes jobs from the queue and
/// runs them through its ``Generator`` until told to stop.
///
/// - Nothing waits: when the queue is empty the thread blocks on the queue's
///   wake-up signal (one second at most, so a stop is seen promptly).
/// - A job whose member's data breaks the rules is buried in the dead
///   letters at once. One whose shard is unavailable (down, breaker open,
///   none active) is postponed with backoff without using up an attempt: an
///   outage of any length fills no dead-letter list. One that failed for
///   any other reason is retried with backoff by the queue, and
///   dead-lettered after its last attempt.
/// - MySQL unavailable: the job is handed back without counting an attempt
///   and the worker pauses, doubling the pause up to a limit, so an outage
///   does not burn through the queue's retries.
/// - The queue connection broke: reconnect with backoff; then hand back
///   whatever this worker held (its job may be half done: jobs are
///   idempotent, so the next taker simply does it again).
/// - Stop: the job in flight finishes (or fails) normally, then the loop ends.
package struct WorkerLoop: Sendable {
    package let runtime: WorkerRuntime
    package let index: Int
    package var core: GenerationCore { runtime.core }

    package init(runtime: WorkerRuntime, index: Int) {
        self.runtime = runtime
        self.index = index
    }

    /// This worker's id in the queue (its processing list).
    package var workerID: String { Self.workerID(runtime, index) }

    package static func workerID(_ runtime: WorkerRuntime, _ index: Int) -> String { "\(runtime.processID):\(index)" }

    /// Runs the loop on a ``ThreadSession`` made on this thread, closed when the loop ends.
    package func run(stop: StopSignal) {
        let session = core.sessions.thread(.task)
        defer { session.close() }
        run(session: session, stop: stop)
    }

    /// Runs the loop on the calling thread's `session` (its queue connection
    /// and its MySQL session, the generator's).
    package func run(session: ThreadSession, stop: StopSignal) {
        let logger = core.logger
        let queue = runtime.queue
        let generator = Generator(core: core, session: session.store)
        var reconnectDelay: Duration = .milliseconds(100)
        var mysqlPause = Backoff(BackoffPolicy(initialDelay: .milliseconds(500), maximumDelay: max(.milliseconds(500), core.settings.mysqlPauseLimit)))
        while !stop.isStopped {
            // A queue connection, handing back what an earlier connection left held.
            let connection: QueueConnection
            do {
                let (opened, fresh) = try session.openQueue()
                connection = opened
                if fresh {
                    reconnectDelay = .milliseconds(100)
                    do {
                        let returned = try queue.handBack(worker: workerID, on: connection)
                        if returned > 0 { logger.info("handed back held jobs", metadata: ["worker": "\(workerID)", "jobs": "\(returned)"]) }
                    } catch {
                        session.dropQueue()
                        continue
                    }
                }
            } catch {
                logger.warning("cannot reach the queue", metadata: ["worker": "\(workerID)", "error": "\(error)"])
                if stop.wait(reconnectDelay) { break }
                reconnectDelay = min(reconnectDelay * 2, .seconds(5))
                continue
            }
            let job: Job?
            do {
                job = try queue.fetch(worker: workerID, on: connection)
                if job == nil {
                    _ = try queue.waitForWork(timeout: .seconds(1), on: connection)
                    continue
                }
            } catch {
                logger.warning("queue unavailable", metadata: ["worker": "\(workerID)", "error": "\(error)"])
                session.dropQueue()
                continue
            }
            guard let job else { continue }
            let started = ContinuousClock.now
            runtime.activity.begin(index, at: started)
            defer { runtime.activity.end(index) }
            do {
                let outcome = try generator.process(job.member, ownSet: ownSetRule(job.priority))
                mysqlPause.reset()
                record(outcome, job: job, took: ContinuousClock.now - started)
                if !outcome.rebuild.isEmpty {
                    _ = try queue.enqueue(Array(Set(outcome.rebuild)), priority: .repair, on: connection)
                }
                try queue.complete(job, worker: workerID, on: connection)
            } catch let failure as GenerationFailure {
                do {
                    switch failure.kind {
                    case .badData:
                        _ = try queue.bury(job, worker: workerID, reason: failure.message, on: connection)
                        core.metrics.jobs("dead").increment()
                        runtime.throughput.add("jobs_dead")
                        logger.error("job buried: stored data breaks the rules", metadata: ["member": "\(job.member)", "reason": "\(failure.message)"])
                    case .mysqlUnavailable:
                        try queue.handBack(worker: workerID, on: connection)
                        let pause = mysqlPause.next()!  // unbounded: never nil
                        logger.warning("MySQL unavailable: pausing", metadata: ["worker": "\(workerID)", "pause_ms": .milliseconds(pause)])
                        if stop.wait(pause) { break }
                    case .shardUnavailable, .busy:
                        // The shard's outage or another job of the member, not this job's fault: no attempt used up.
                        // Behind another job of the same member: a short wait, not a shard outage's backoff.
                        let outcome = failure.kind == .busy
                            ? try queue.postpone(job, worker: workerID, baseDelay: .milliseconds(100), maxDelay: .seconds(1), on: connection)
                            : try queue.postpone(job, worker: workerID, on: connection)
                        core.metrics.jobs("postponed").increment()
                        runtime.throughput.add("jobs_postponed")
                        if case .postponed(let at, let times) = outcome {
                            logger.log(
                                level: times == 1 && failure.kind != .busy ? .warning : .debug,
                                failure.kind == .busy ? "job postponed: the member's change is being published by another job" : "job postponed: its shard is unavailable",
                                metadata: [
                                    "member": "\(job.member)", "times": "\(times)",
                                    "retry_in_ms": "\(max(0, at - Int64(Date().timeIntervalSince1970 * 1000)))",
                                    "reason": "\(failure.message)",
                                ])
                        }
                    case .failed:
                        let outcome = try queue.fail(job, worker: workerID, reason: failure.message, on: connection)
                        if case .dead = outcome {
                            core.metrics.jobs("dead").increment()
                            runtime.throughput.add("jobs_dead")
                            logger.error("job dead after its last attempt", metadata: ["member": "\(job.member)", "reason": "\(failure.message)"])
                        } else {
                            core.metrics.jobs("retry").increment()
                            runtime.throughput.add("jobs_retry")
                            logger.warning("job failed, will retry", metadata: ["member": "\(job.member)", "reason": "\(failure.message)"])
                        }
                    }
                } catch {
                    logger.warning("queue unavailable", metadata: ["worker": "\(workerID)", "error": "\(error)"])
                    session.dropQueue()
                }
            } catch {
                // complete() failed: the job is done; if it stays held, the next hand-back returns it (harmless).
                logger.warning("queue unavailable", metadata: ["worker": "\(workerID)", "error": "\(error)"])
                session.dropQueue()
            }
        }
        // Stopping: nothing is held between jobs, but hand back to be sure.
        if session.hasQueue, let redis = try? session.openQueue().connection { _ = try? queue.handBack(worker: workerID, on: redis) }
    }

    /// A repair job (the sweeps, the audit) writes the member's own set only
    /// when they should hold one: holding a shard or a set, or active within
    /// the active window; a dormant member's change is only published.
    /// Every other job was asked for by someone who wants the set.
    private func ownSetRule(_ priority: JobPriority) -> Generator.OwnSet {
        guard priority == .repair else { return .always }
        return .ifWanted(activeSince: Int64(Date().timeIntervalSince1970) - runtime.settings.activeWindow.components.seconds)
    }

    private func record(_ outcome: GenerationOutcome, job: Job, took: Duration) {
        let metrics = core.metrics
        metrics.jobDuration.recordNanoseconds(took.inNanoseconds)
        let nowMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        metrics.enqueueToStored.recordMilliseconds(max(0, nowMilliseconds - job.enqueuedAt))
        let publication = outcome.publication
        let throughput = runtime.throughput
        throughput.add("jobs_done")
        throughput.latency(milliseconds: max(0, nowMilliseconds - job.enqueuedAt))
        for (placed, count) in publication.outcomes { throughput.add("placed_" + placed.name, count) }
        metrics.publicationSkips("covered").increment(by: publication.skippedCovered)
        metrics.publicationSkips("unchanged").increment(by: publication.skippedUnchanged)
        metrics.publicationSkips("below_floor").increment(by: publication.skippedBelowFloor)
        switch outcome.kind {
        case .generated, .publishedOnly:
            metrics.jobs("done").increment()
            metrics.candidatesScored.record(outcome.candidates)
            core.logger.debug(
                "generated",
                metadata: [
                    "member": "\(job.member)", "shard": "\(outcome.shard.map(String.init) ?? "none")", "matches": "\(outcome.matches)",
                    "placed": "\(publication.placed + publication.catchUp)",
                    "took_ms": .milliseconds(took),
                ])
        case .removed:
            metrics.jobs("removed").increment()
            core.logger.info(
                "removed a deleted member", metadata: ["member": "\(job.member)", "entries": "\(publication.count(.removed))"])
        }
    }
}
