import Foundation
import KindredCore
@testable import KindredTestKit
import KindredWorker
import Logging
import RedisClient
import Testing
import TestSupport
import WorkQueue

/// The per-minute counters the worker publishes for the dashboard: each
/// recorded count reaches the queue's Redis exactly once, through failures
/// and lost replies.
@Suite("Throughput counters", .offCooperativePool, .timeLimit(.minutes(2)))
struct ThroughputTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let minute = ThroughputRecorder.minute(of: now)

    @Test("a batch is numbered and offered again, unchanged, until confirmed; what is recorded meanwhile waits for the next number")
    func batches() throws {
        let recorder = ThroughputRecorder()
        #expect(recorder.nextBatch() == nil)
        recorder.add("jobs_done", 2, now: Self.now)
        let first = try #require(recorder.nextBatch())
        #expect(first.sequence == 1 && first.counts == [Self.minute: ["jobs_done": 2]])
        recorder.add("jobs_done", 5, now: Self.now)
        #expect(recorder.nextBatch() == first, "not confirmed: the same batch again")
        recorder.confirm(first)
        let second = try #require(recorder.nextBatch())
        #expect(second.sequence == 2 && second.counts == [Self.minute: ["jobs_done": 5]])
        recorder.confirm(first)  // a stale confirmation changes nothing
        #expect(recorder.nextBatch() == second)
        recorder.confirm(second)
        #expect(recorder.nextBatch() == nil)
    }

    @Test("a failed send leaves its batch for the next round; a round sends at most two batches")
    func publishRounds() throws {
        struct Down: Error {}
        let recorder = ThroughputRecorder()
        recorder.add("jobs_done", 1, now: Self.now)
        #expect(throws: Down.self) { try recorder.publish { _ in throw Down() } }
        recorder.add("jobs_failed", 1, now: Self.now)
        var sent: [ThroughputRecorder.Batch] = []
        recorder.publish { sent.append($0) }
        #expect(sent.map(\.sequence) == [1, 2])
        #expect(sent.map(\.counts) == [[Self.minute: ["jobs_done": 1]], [Self.minute: ["jobs_failed": 1]]])
        sent = []
        recorder.publish { sent.append($0) }
        #expect(sent.isEmpty)
    }

    @Test("on a real Redis: a batch sent again after its reply was lost (server frozen, read timed out) is counted once; a failed one once when resent; publishers count apart")
    func exactlyOnce() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        defer { redis.close() }
        let queue = WorkQueue()
        let connection = QueueConnection(redis)
        func counted() throws -> [String: Int] {
            try queue.throughput(Self.minute...Self.minute, on: connection)[Self.minute] ?? [:]
        }
        let recorder = ThroughputRecorder()
        let send = { (batch: ThroughputRecorder.Batch) throws in
            _ = try queue.addThroughput(batch.counts, publisher: "w1", sequence: batch.sequence, on: connection)
        }

        // Stored, but not confirmed, as if its reply were lost: the batch is offered again.
        recorder.add("jobs_done", 3, now: Self.now)
        let lost = try #require(recorder.nextBatch())
        try send(lost)
        #expect(try counted() == ["jobs_done": 3])
        recorder.add("jobs_done", 2, now: Self.now)
        try recorder.publish(send)
        #expect(try counted() == ["jobs_done": 5], "the lost-reply batch counted once, the new one added")

        // Another process numbers its own batches from 1: not taken for a resend of w1's.
        #expect(try queue.addThroughput([Self.minute: ["jobs_done": 1]], publisher: "w2", sequence: 1, on: connection))
        #expect(try !queue.addThroughput([Self.minute: ["jobs_done": 1]], publisher: "w1", sequence: 1, on: connection))
        #expect(try counted() == ["jobs_done": 6])

        // A counter key that holds something else: the batch is refused before anything is written.
        let next = Self.minute + 1
        _ = try redis.send(["SET", "kq:stats:\(next)", "not a hash"])
        #expect {
            try queue.addThroughput(
                [Self.minute: ["jobs_done": 1], next: ["jobs_done": 1]], publisher: "w3", sequence: 1, on: connection)
        } throws: { error in
            (error as? QueueError)?.isThroughputRefusal == true
        }
        #expect(try counted() == ["jobs_done": 6], "nothing of the refused batch was written")

        // A reply really lost: the server is frozen when the script reaches it, the send times
        // out, and the server runs the script when it thaws. Sent again under its number, the
        // batch is added once (put back and sent again, as before, it was added twice).
        recorder.add("placements_entered", 7, now: Self.now)
        let impatient = try server.connect(readTimeout: .milliseconds(300), retry: .none)
        defer { impatient.close() }
        server.freeze()
        try poll(until: "redis-server to stop (SIGSTOP)", timeout: .seconds(10), interval: .milliseconds(2)) { server.isFrozen }
        #expect(throws: (any Error).self) {
            try recorder.publish { batch in
                _ = try queue.addThroughput(batch.counts, publisher: "w1", sequence: batch.sequence, on: QueueConnection(impatient))
            }
        }
        server.thaw()
        try poll(until: "the thawed server to run the script whose reply was lost") {
            try counted()["placements_entered"] == 7
        }
        try recorder.publish(send)
        #expect(try counted() == ["jobs_done": 6, "placements_entered": 7])
        #expect(recorder.nextBatch() == nil, "the resent batch was confirmed")

        // The server is gone: the batch waits, unchanged, and counts once the queue is back
        // (here empty: a queue server that lost its data lost the counters with it).
        recorder.add("jobs_failed", 4, now: Self.now)
        server.kill()
        #expect(throws: (any Error).self) { try recorder.publish(send) }
        try server.restart(empty: true)
        let again = try server.connect()
        defer { again.close() }
        try recorder.publish { batch in
            _ = try queue.addThroughput(batch.counts, publisher: "w1", sequence: batch.sequence, on: QueueConnection(again))
        }
        let after = try queue.throughput(Self.minute...Self.minute, on: QueueConnection(again))[Self.minute] ?? [:]
        #expect(after == ["jobs_failed": 4])
    }

    @Test("the worker's publisher drops a batch the queue refuses for good (logged) and publishes the next; a server down keeps the batch")
    func refusedBatchIsDropped() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        defer { redis.close() }
        let queue = WorkQueue()
        let logs = LogRecorder()
        let recorder = ThroughputRecorder()
        func round(_ connection: RedisConnection) throws {
            try Maintenance.publishThroughput(recorder, publisher: "w1", queue: queue, logger: logs.logger()) {
                try $0(QueueConnection(connection))
            }
        }
        _ = try redis.send(["SET", "kq:stats:\(Self.minute)", "not a hash"])
        recorder.add("jobs_done", 2, now: Self.now)
        try round(redis)
        #expect(recorder.nextBatch() == nil, "the refused batch was dropped")
        #expect(logs.all.contains { $0.level == .error && $0.message.contains("refused by the queue") }, "\(logs.all)")

        let later = Self.now.addingTimeInterval(60)
        recorder.add("jobs_done", 3, now: later)
        try round(redis)
        #expect(try queue.throughput((Self.minute + 1)...(Self.minute + 1), on: QueueConnection(redis))[Self.minute + 1] == ["jobs_done": 3])

        // A connection failure is not a refusal: the batch stays for the next round.
        recorder.add("jobs_done", 1, now: later)
        server.kill()
        #expect(throws: (any Error).self) { try round(redis) }
        #expect(recorder.nextBatch()?.counts == [Self.minute + 1: ["jobs_done": 1]])
    }
}
