import Foundation
import KindredCore
import KindredSupport
@testable import KindredTestKit
import Logging
@_spi(Testing) import MemberStore
import Scoring
import ServiceLifecycle
import Testing
import TestSupport

// Generous limits: under a full parallel test run, blocking tests can keep
// the two cooperative threads busy for a while before these async tests run.
@Suite("Thread services and the stop signal", .timeLimit(.minutes(3)))
struct ServicesTests {
    let logger = Logger(label: "test")

    @Test("wait returns at once when stopped from another thread, and false on timeout")
    func stopSignal() throws {
        let signal = StopSignal()
        #expect(!signal.wait(.milliseconds(20)))
        let waiter = BackgroundThread("waiter") { signal.wait(.seconds(30)) }
        signal.stop()
        #expect(try waiter.result(timeout: .seconds(5)))
        #expect(signal.isStopped && signal.wait(.seconds(30)))
    }

    @Test("graceful shutdown stops the threads and run() returns")
    func gracefulShutdown() async throws {
        let started = DispatchSemaphore(value: 0)
        let counter = Counter()
        let service = ThreadsService(name: "loop", count: 3, shutdownTimeout: .seconds(10), logger: logger) { _, stop in
            started.signal()
            while !stop.isStopped { counter.add(); stop.wait(.milliseconds(1)) }
        }
        let group = ServiceGroup(services: [service], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for _ in 0..<3 { try await waitBlocking(started) }
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
        #expect(service.stop.isStopped)
        #expect(counter.value > 0)
    }

    @Test("a thread that ignores the stop signal is abandoned after the shutdown timeout")
    func boundedShutdown() async throws {
        let stuck = StopSignal()
        let started = DispatchSemaphore(value: 0)
        let service = ThreadsService(name: "stuck", count: 1, shutdownTimeout: .milliseconds(300), logger: logger) { _, _ in
            started.signal()
            stuck.wait(.seconds(60))  // never looks at its own stop signal
        }
        let group = ServiceGroup(services: [service], logger: logger)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await waitBlocking(started)
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(250), "run() waited for the shutdown timeout")
        #expect(elapsed < .seconds(90), "run() returned although the thread never stopped")
        stuck.stop()
    }

    @Test("a periodic task keeps running after an error")
    func periodic() async throws {
        struct Boom: Error {}
        let runs = Counter()
        let enough = DispatchSemaphore(value: 0)
        let service = periodicService(name: "tick", interval: .milliseconds(5), logger: logger) {
            runs.add()
            if runs.value == 3 { enough.signal() }
            throw Boom()
        }
        let group = ServiceGroup(services: [service], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await waitBlocking(enough)
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
        #expect(runs.value >= 3)
    }

    @Test("readers scan while a writer changes the population; every scan sees a whole state")
    func sharedPopulation() async throws {
        let survey = try Survey(optionCounts: Array(repeating: 2, count: 5))
        let answers = (0..<5).map { Answer(question: $0, option: 0, accepted: OptionSet8([0]), importance: .somewhat) }
        let probe = Member(id: 1, gender: .woman, seeking: [.man], age: 30, ageMin: 18, ageMax: 99, answers: answers)
        let shared = SharedPopulation(Population(survey: survey))
        try shared.upsert(probe, version: 1)
        let writer = BackgroundThread("writer") { () -> Result<Void, any Error> in
            Result {
                // Members 2...201 arrive in pairs: the count of matches is always even.
                for id in stride(from: 2, to: 202, by: 2) {
                    var changes = SnapshotChanges(watermark: SnapshotWatermark(serverTime: ""))
                    for other in [id, id + 1] {
                        changes.members.append(Member(
                            id: MemberID(other), gender: .man, seeking: [.woman], age: 30, ageMin: 18, ageMax: 99,
                            answers: answers))
                        changes.versions.append(1)
                    }
                    shared.apply(changes)
                }
            }
        }
        let readers = (0..<2).map { n in
            BackgroundThread("reader \(n)") { () -> [Int] in
                let finder = MatchFinder()
                return (0..<200).map { _ in shared.read { finder.matches(forID: 1, in: $0)?.count ?? -1 } }
            }
        }
        // The joins block: off the cooperative pool.
        let scans = try await onThread { () -> [[Int]] in
            try writer.result().get()
            return try readers.map { try $0.result() }
        }
        for counts in scans {
            #expect(counts.allSatisfy { $0 % 2 == 0 }, "a scan saw half a write")
            #expect(counts == counts.sorted(), "counts only grow")
        }
        #expect(shared.read { $0.count } == 201)
    }

    @Test("a refresh that changes nothing keeps the snapshot's version (what was cached under it stays valid); a write moves it")
    func refreshKeepsTheVersion() throws {
        let survey = try Survey(optionCounts: [2])
        let shared = SharedPopulation(Population(survey: survey))
        let start = shared.version
        shared.markRefreshed()
        #expect(shared.version == start)
        let member = Member(id: 3, gender: .man, seeking: [.woman], age: 30, ageMin: 18, ageMax: 99, answers: [])
        #expect(try shared.upsert(member, version: 1))
        #expect(shared.version == start + 1)
        // The same record again (a login, a refresh's overlap) changes nothing a scan reads.
        #expect(try !shared.upsert(member, version: 1))
        #expect(shared.version == start + 1)
        #expect(shared.changedMembers(since: start) == [3])
        #expect(shared.changedMembers(since: start + 1) == [])
        #expect(shared.read(withVersion: { population, version in (population.count, version) }) == (1, start + 1))
    }
}

/// Waits for a thread's signal without blocking the cooperative pool.
/// Generous: at the start of a full run the pool can be held for a minute by
/// synchronous tests waiting on the shared MariaDB's one-time start, and the
/// services under test need the pool to start their threads.
func waitBlocking(_ semaphore: DispatchSemaphore, timeout: Duration = .seconds(150)) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while semaphore.wait(timeout: .now()) != .success {
        guard clock.now < deadline else { throw TestSupportError("timed out waiting for a thread") }
        try await Task.sleep(for: .milliseconds(2))
    }
}

