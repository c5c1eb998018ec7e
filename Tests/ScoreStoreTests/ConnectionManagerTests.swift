import Foundation
import RedisClient
@testable import ScoreStore
import Scoring
import Testing
import TestSupport

/// The lazy connection manager against real shards: lazy connects, a shard
/// killed mid-pipeline, the breaker, reconnects, idle connections.
@Suite("Connection manager", .timeLimit(.minutes(2)), .offCooperativePool)
struct ConnectionManagerTests {
    @Test func touchingOneShardOfThreeConnectsToThatOneOnly() throws {
        let shards = try Shards()
        for id: ShardID in 1...3 {
            #expect(try shards.raw(id).clients(named: "kindred").isEmpty)
        }
        try shards.store.writeSet(17, shard: 2, matches: rankedMatches(for: 17, count: 10), answersVersion: "s", limit: 10)
        #expect(try shards.store.readSet(17, shard: 2) != nil)
        #expect(try shards.raw(1).clients(named: "kindred").isEmpty)
        #expect(try shards.raw(2).clients(named: "kindred").count == 1)  // reused, not one per call
        #expect(try shards.raw(3).clients(named: "kindred").isEmpty)
        let health = shards.manager.health()
        #expect(health[1]?.openConnections == 0 && health[2]?.openConnections == 1 && health[3]?.openConnections == 0)
    }

    @Test func concurrentCallersGetAConnectionEachUpToTheMaximum() throws {
        // The wait for a lent connection is bounded generously: this is about
        // sharing two connections among four callers, not about speed (a
        // loaded machine can hold a connection for seconds).
        let shards = try Shards {
            $0.maxConnectionsPerShard = 2
            $0.checkoutTimeout = .seconds(60)
        }
        try shards.store.writeSet(5, shard: 1, matches: rankedMatches(for: 5, count: 2000), answersVersion: "s", limit: 2000)
        let store = shards.store
        let readers = (0..<4).map { _ in
            BackgroundThread("reader") { () -> [String] in
                var problems: [String] = []
                for _ in 0..<30 {
                    do {
                        let count = try store.readSet(5, shard: 1)?.matches.count
                        if count != 2000 { problems.append("read \(count.map(String.init) ?? "no set") entries") }
                    } catch {
                        problems.append("\(error)")
                    }
                }
                return problems
            }
        }
        for reader in readers { #expect(try reader.result() == []) }
        let named = try shards.raw(1).clients(named: "kindred").count
        #expect(named >= 1 && named <= 2)
    }

    @Test func aShardKilledMidPipelineFailsEachPlacementBoundedlyThenTheBreakerOpensFailsFastAndRecovers() throws {
        let shards = try Shards(configure: {
            $0.breaker = CircuitBreaker.Configuration(failureThreshold: 3, coolOff: .seconds(30))
        }, configureStore: { $0.batchSize = 100 })
        let store = shards.store
        // 300 targets with sets on shard 1, 30 on shard 2.
        let onOne = (0..<300).map { MemberID(3 * $0) }  // member % 3 == 0 -> shard 1
        let onTwo = (0..<30).map { MemberID(3 * $0 + 1) }  // -> shard 2
        for target in onOne + onTwo {
            try store.writeSet(target, shard: Shards.shardOf(target)!, matches: [Match(id: 999_999, tenths: 99)], answersVersion: "s", limit: 10)
        }
        // One placement loads the place script on shard 1's pooled connection.
        #expect(store.place(777_777, into: onOne[0], tenths: 42, limit: 10, shard: 1).count(.entered) == 1)
        // Shard 1 stops answering writes, so no reply can come back before
        // the kill: the event is the first batch written, replies unread.
        let server = shards.server(1)
        _ = try shards.raw(1).sendChecked(["CLIENT", "PAUSE", "60000", "WRITE"])
        let killed = Atomicish()
        store.hooks.setAfterFlush { shard in
            if shard == 1 && !killed.value {
                killed.set()
                server.kill()
            }
        }
        let placements = (onOne + onTwo).map { ScoreStore.Placement(target: $0, member: 777_777, tenths: 42, answersVersion: "s") }
        let placing = BackgroundThread("placements") {
            store.place(placements, limit: 10, shardOf: Shards.shardOf)
        }
        let stats = try placing.result(timeout: .seconds(30))  // bounded: no hang
        store.hooks.setAfterFlush(nil)
        #expect(killed.value)
        #expect(stats.failed == 300)  // every placement to shard 1, the flushed batch included
        #expect(stats.count(.entered) == 30)  // shard 2 went on
        #expect(stats.replies.compactMap { $0 }.count == 30)
        #expect(stats.errors.count == 1)
        #expect(stats.errors.first?.shard == 1)
        #expect(stats.errors.first?.isTransportFailure == true)
        // The reused connection broke, a fresh one was refused: one failure.
        #expect(shards.manager.health()[1]?.consecutiveFailures == 1)
        #expect(shards.manager.breakerState(of: 1) == .closed)

        // Two more failures open the breaker (K = 3).
        for _ in 0..<2 {
            let error = #expect(throws: ScoreStoreError.self) { try store.readSet(0, shard: 1) }
            #expect(error?.code == .connectionFailed)
        }
        #expect(shards.manager.breakerState(of: 1) == .open)
        // Open: fails fast, without trying (the failure count stays; no wait).
        let start = ContinuousClock.now
        let fast = #expect(throws: ScoreStoreError.self) { try store.readSet(0, shard: 1) }
        #expect(ContinuousClock.now - start < .milliseconds(500))
        #expect(fast?.code == .shardUnavailable)
        #expect(fast?.retryAfter == .seconds(30))
        #expect(fast?.shard == 1)
        // Other shards are unaffected.
        #expect(try store.readSet(1, shard: 2) != nil)
        #expect(shards.manager.breakerState(of: 2) == .closed)

        // The shard comes back on the same port (empty). After the cool-off
        // the breaker is half-open; the trial succeeds and closes it.
        try server.restart(empty: true)
        shards.clock.advance(by: .seconds(29))
        #expect(throws: ScoreStoreError.self) { try store.readSet(0, shard: 1) }
        shards.clock.advance(by: .seconds(1))
        #expect(shards.manager.breakerState(of: 1) == .halfOpen)
        #expect(try store.readSet(0, shard: 1) == nil)  // the data went with the restart
        #expect(shards.manager.breakerState(of: 1) == .closed)
        try store.writeSet(0, shard: 1, matches: [Match(id: 5, tenths: 50)], answersVersion: "again", limit: 10)
        #expect(try store.readSet(0, shard: 1)?.meta.answersVersion == "again")
        #expect(try server.connect().clients(named: "kindred").count == 1)
    }

    @Test func afterAFailedConnectTheNextAttemptWaitsOutTheJitteredBackoff() throws {
        let shards = try Shards(count: 1) {
            // Delays of seconds, so that "no wait" (a refused connect, well under a second even on a
            // loaded machine) and "the backoff waited" (1.5 s) stay far apart.
            $0.backoff = ReconnectBackoff.Configuration(baseDelay: .seconds(2), maxDelay: .seconds(4))
            $0.breaker = CircuitBreaker.Configuration(failureThreshold: 10, coolOff: .seconds(30))
        }
        shards.server(1).kill()
        let first = ContinuousClock.now
        #expect(throws: ScoreStoreError.self) { try shards.store.readSet(1, shard: 1) }
        #expect(ContinuousClock.now - first < .seconds(1))  // no backoff before the first attempt
        // The fake clock stands still, so the whole jittered delay (0.5 of
        // the way from 1 to 2 s) is waited before the second attempt.
        let second = ContinuousClock.now
        let error = #expect(throws: ScoreStoreError.self) { try shards.store.readSet(1, shard: 1) }
        #expect(ContinuousClock.now - second >= .milliseconds(1500))
        #expect(error?.code == .connectionFailed)
        #expect(shards.manager.health()[1]?.consecutiveFailures == 2)
        // Once the delay has passed (by the manager's clock), no wait.
        shards.clock.advance(by: .seconds(4))
        let third = ContinuousClock.now
        #expect(throws: ScoreStoreError.self) { try shards.store.readSet(1, shard: 1) }
        #expect(ContinuousClock.now - third < .seconds(1))
    }

    @Test func aPooledConnectionStaleAfterARestartIsReplacedWithoutAnError() throws {
        let shards = try Shards()
        try shards.store.writeSet(3, shard: 1, matches: [Match(id: 5, tenths: 50)], answersVersion: "s", limit: 10)
        try shards.server(1).restart(empty: false)  // not saved: empty as well
        #expect(try shards.store.readSet(3, shard: 1) == nil)
        #expect(shards.manager.health()[1]?.consecutiveFailures == 0)
    }

    @Test func idleConnectionsAreClosedAfterTheIdleTimeout() throws {
        let shards = try Shards { $0.idleTimeout = .seconds(60) }
        _ = try shards.store.readSet(1, shard: 1)
        _ = try shards.store.readSet(2, shard: 2)
        let raw1 = try shards.raw(1)
        let raw2 = try shards.raw(2)
        #expect(try raw1.clients(named: "kindred").count == 1)
        #expect(shards.manager.closeIdleConnections() == 0)  // not idle long enough
        shards.clock.advance(by: .seconds(59))
        _ = try shards.store.readSet(2, shard: 2)  // shard 2's connection was used again
        shards.clock.advance(by: .seconds(1))
        #expect(shards.manager.closeIdleConnections() == 1)  // shard 1's only
        try poll(until: "shard 1 to see the idle connection closed") { try raw1.clients(named: "kindred").isEmpty }
        #expect(try raw2.clients(named: "kindred").count == 1)
        #expect(shards.manager.health()[1]?.openConnections == 0)

        // The reaper thread does the same on its own.
        shards.manager.startIdleReaper(every: .milliseconds(10))
        shards.clock.advance(by: .seconds(60))
        try poll(until: "the reaper to close shard 2's idle connection") { try raw2.clients(named: "kindred").isEmpty }
        // And the next call connects again.
        #expect(try shards.store.readSet(1, shard: 1) == nil)
        #expect(try raw1.clients(named: "kindred").count == 1)
        shards.manager.close()
    }

    @Test func aNewShardListAddsRemovesAndMovesShards() throws {
        let shards = try Shards()
        _ = try shards.store.readSet(1, shard: 3)
        let raw3 = try shards.raw(3)
        #expect(try raw3.clients(named: "kindred").count == 1)
        let kept = shards.manager.shards.filter { $0.id != 3 }
        shards.manager.update(shards: kept)
        let error = #expect(throws: ScoreStoreError.self) { try shards.store.readSet(1, shard: 3) }
        #expect(error?.code == .unknownShard)
        try poll(until: "the removed shard's connection to close") { try raw3.clients(named: "kindred").isEmpty }
        // Shard 4 is server 3 under a new id.
        let server = shards.server(3)
        shards.manager.update(shards: kept + [ShardEndpoint(id: 4, host: server.host, port: Int(server.port))])
        #expect(try shards.store.readSet(1, shard: 4) == nil)
        #expect(shards.manager.shards.map(\.id) == [1, 2, 4])
    }

    @Test func connectionsAreNamedSoTheyCanBeCounted() throws {
        let shards = try Shards { $0.clientName = "kindred-test" }
        _ = try shards.store.readSet(1, shard: 1)
        #expect(try shards.raw(1).clients(named: "kindred-test").count == 1)
    }
}
