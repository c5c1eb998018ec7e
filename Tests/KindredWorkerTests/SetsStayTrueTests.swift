import Foundation
import Hummingbird
@testable import KindredCore
@testable import KindredTestKit
@testable import KindredWorker
import MariaDBClient
import MemberFormat
@_spi(Testing) import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Testing
import TestSupport
import WorkQueue

/// Each way a live site used to leave members looking at the wrong people
/// (issue "Sets stay true"), reproduced against real servers and checked
/// against the engine's own recomputation over the population as it is.
@Suite("Sets stay true while members change", .serialized, .timeLimit(.minutes(10)))
struct SetsStayTrueTests {
    @Test("a new block hides each member from the other at once in every web process, and the job takes them out of each other's sets; an unblock brings them back")
    func blockAndUnblock() async throws {
        let web = try await onThread { try ExactSets.harness() }
        // A second web process over the same servers: its snapshot does not hold the block yet.
        let other = try await onThread { try WebHarness(installation: web.installation) { $0.scoring.topN = ExactSets.topN } }
        let (a, b) = try await onThread { try ExactSets.mutualPair(web) }
        #expect(try await ExactSets.page(other, b).matches.contains { $0.id == a })
        let before = try await ExactSets.page(other, b)
        var record = try #require(web.installation.members.first { $0.id == a })
        record.blocked = [b]
        let put = try await web.send(.put, "/v1/members/\(a)", body: MemberWriter.line(record))
        #expect(put.status == 200 || put.status == 202, "\(put.body)")
        // At once, in the other process: neither sees the other, the totals drop, the pair has no score.
        for (reader, hidden) in [(b, a), (a, b)] {
            let page = try await ExactSets.page(other, reader)
            #expect(!page.matches.contains { $0.id == hidden }, "member \(reader) still sees \(hidden)")
        }
        let after = try await ExactSets.page(other, b)
        #expect(after.json["total"] as? Int == before.json["total"] as? Int, "the slack replaces the hidden entry")
        let pair = try await other.send(.get, "/v1/members/\(b)/score/\(a)")
        #expect(pair.json["excluded"] as? String == "blocked", "\(pair.body)")
        // The job corrects the stored sets: the pair is out of both.
        try await onThread { try ExactSets.work(web, [a]) }
        try await onThread { try ExactSets.expectEverySetExact(web) }
        // Unblocking: the marks go; after the job, both sets hold the pair again.
        record.blocked = []
        _ = try await web.send(.put, "/v1/members/\(a)", body: MemberWriter.line(record))
        try await onThread { try ExactSets.work(web, [a]) }
        try await onThread { try ExactSets.expectEverySetExact(web) }
        _ = try await onThread { try other.refreshSnapshot(since: other.watermark) }
        #expect(try await ExactSets.page(other, b).matches.contains { $0.id == a })
    }

    @Test("after A's seeking stops including B's gender, B no longer sees A (at once in this process, within a refresh in others) and the stored sets follow")
    func seekingChange() async throws {
        let web = try await onThread { try ExactSets.harness() }
        let (a, b) = try await onThread { try ExactSets.mutualPair(web) }
        var record = try #require(web.installation.members.first { $0.id == a })
        let bGender = try #require(web.installation.members.first { $0.id == b }).gender
        let others = Gender.allCases.filter { $0 != bGender }
        record.seeking = GenderSet(rawValue: others.reduce(0) { $0 | GenderSet($1).rawValue })
        _ = try await web.send(.put, "/v1/members/\(a)", body: MemberWriter.line(record))
        #expect(!(try await ExactSets.page(web, b)).matches.contains { $0.id == a }, "B still sees A")
        try await onThread { try ExactSets.work(web, [a]) }
        try await onThread { try ExactSets.expectEverySetExact(web) }
    }

    @Test("a deleted member's old entries never come back: not after the marks are lost with the queue, not when the id registers again")
    func deletedMemberComesBack() async throws {
        let web = try await onThread { try ExactSets.harness() }
        let (a, b) = try await onThread { try ExactSets.mutualPair(web) }
        #expect(try await web.send(.delete, "/v1/members/\(a)").status < 300)
        try await onThread { try ExactSets.work(web, [a]) }
        // The marks die with the queue's Redis: readers hide the member by their snapshot, and the sets hold them no more.
        try await onThread { try web.installation.queueServer.restart(empty: true) }
        #expect(!(try await ExactSets.page(web, b)).matches.contains { $0.id == a })
        try await onThread { try ExactSets.expectEverySetExact(web) }
        // The id registers again, as someone else (other answers, blocking B): placed anew, nothing of the old record.
        var again = try #require(web.installation.members.first { $0.id == a })
        again.answers = Array(again.answers.dropFirst(again.answers.count / 2))
        again.blocked = [b]
        let put = try await web.send(.put, "/v1/members/\(a)", body: MemberWriter.line(again))
        #expect(put.status < 300, "\(put.body)")
        try await onThread { try ExactSets.work(web, [a]) }
        try await onThread { try ExactSets.expectEverySetExact(web) }
    }

    @Test("concurrent changes of two members, in two processes, converge to the exact pair score on both sides")
    func concurrentChanges() async throws {
        let web = try await onThread { try ExactSets.harness() }
        let second = try await onThread { try WebHarness(installation: web.installation) { $0.scoring.topN = ExactSets.topN } }
        let (a, b) = try await onThread { try ExactSets.mutualPair(web) }
        let survey = web.installation.survey
        for round in 0..<6 {
            // Both change in MySQL, then both jobs run at once, one per process.
            try await onThread {
                let connection = try web.installation.connectMySQL()
                defer { connection.close() }
                let repository = MemberRepository(connection: connection, survey: survey)
                for id in [a, b] {
                    var member = try #require(try repository.member(id))
                    member.answers = member.answers.map { answer in
                        var changed = answer
                        changed.importance = Importance(rawValue: UInt8((Int(answer.importance.rawValue) + round + Int(id)) % 5))!
                        return changed
                    }
                    try repository.upsert([member])
                }
            }
            let first = BackgroundThread("job a") { Result { try Generator(core: web.core).process(a, ownSet: .always) } }
            let other = BackgroundThread("job b") { Result { try Generator(core: second.core).process(b, ownSet: .always) } }
            _ = try first.result().get()
            _ = try other.result().get()
        }
        try await onThread { try ExactSets.expectEverySetExact(web) }
    }

    @Test("a member without a set of their own (dormant, no shard) still enters every set they belong to")
    func dormantNewcomer() async throws {
        let web = try await onThread { try ExactSets.harness() }
        var newcomer = try #require(web.installation.members.first { $0.id == 7 })
        newcomer.id = 900_001
        newcomer.lastActive = nil
        newcomer.answers = newcomer.answers.map { answer in
            var wide = answer
            wide.accepted = OptionSet8(range: 0...(web.installation.survey.optionCounts[answer.question] - 1))
            wide.importance = .mandatory
            return wide
        }
        let stored = newcomer
        try await onThread {
            let newcomer = stored
            let connection = try web.installation.connectMySQL()
            defer { connection.close() }
            try MemberRepository(connection: connection, survey: web.installation.survey).upsert([newcomer])
            // The repair sweep's job for them: dormant, no shard: published only.
            let outcome = try Generator(core: web.core).process(newcomer.id, ownSet: .ifWanted(activeSince: Int64(Date().timeIntervalSince1970) - 86_400))
            #expect(outcome.kind == .publishedOnly)
            #expect(outcome.publication.count(.entered) > 0)
            #expect(try GenerationStore(connection: connection).generation(of: newcomer.id) == nil, "no set of their own")
            #expect(try PublishedStore(connection: connection, survey: web.installation.survey).needingPublication().isEmpty)
        }
        try await onThread { try ExactSets.expectEverySetExact(web) }
    }

    @Test("sets generated by another process before the worker's first start carry their shards' markers: no shard is reported empty, nothing is queued; a FLUSHALL afterwards is still noticed")
    func noFalseAlarmAfterBackfill() async throws {
        let installation = try await onThread { try Installation(memberLimit: 40) }
        // "kindred backfill": its own process, its own store.
        let (backfill, _) = try await onThread { try installation.core { $0.scoring.topN = ExactSets.topN } }
        try await onThread {
            let generator = Generator(core: backfill)
            for member in installation.members { _ = try generator.regenerate(member.id) }
            backfill.scores.manager.close()
        }
        // "kindred worker", started afterwards.
        let logs = LogRecorder()
        let worker = try await onThread { try installation.worker(logs: logs, configure: { $0.scoring.topN = ExactSets.topN }) }
        let watcher = Maintenance.shardWatcher(worker)
        try await onThread {
            try runOnce(watcher)
            let queue = try installation.queueServer.connect()
            #expect(try WorkQueue().stats(on: QueueConnection(queue)).waiting[.repair] ?? 0 == 0, "nothing queued for repair")
            #expect(!logs.all.contains { $0.message.contains("came back empty") || $0.message.contains("restored") })

            let connection = try installation.connectMySQL()
            defer { connection.close() }
            let shardID = installation.shardIDs[0]
            let onShard = try GenerationStore(connection: connection).members(onShard: shardID)
            #expect(!onShard.isEmpty)
            _ = try installation.shards[0].connect().sendChecked(["FLUSHALL"])
            try runOnce(watcher)
            #expect(try WorkQueue().stats(on: QueueConnection(queue)).waiting[.repair] == onShard.count, "every set of the flushed shard is queued")
            #expect(logs.all.contains { $0.message.contains("came back empty") && $0.metadata["shard"] == "\(shardID)" })
        }
    }

    @Test("a shard restored from an older copy of its data is noticed (its write sequence went back) and its sets are queued for rebuild")
    func shardRestoredFromAnOlderCopy() async throws {
        let installation = try await onThread { try Installation(memberLimit: 60) }
        // A shard that persists: SAVE, keep the file, change things, then come back from the kept file.
        let runtime = try await onThread { try installation.worker(configure: { $0.scoring.topN = ExactSets.topN }) }
        try await onThread {
            let generator = Generator(core: runtime.core)
            for member in installation.members { _ = try generator.regenerate(member.id) }
        }
        let watcher = Maintenance.shardWatcher(runtime)
        let shard = installation.shards[0]
        let shardID = installation.shardIDs[0]
        try await onThread {
            try runOnce(watcher)  // records the sequence
            let redis = try shard.connect()
            _ = try redis.sendChecked(["SAVE"])
            let saved = try Data(contentsOf: shard.dataDirectory.appendingPathComponent("dump.rdb"))
            try runOnce(watcher)  // the sequence moves on past the copy
            shard.kill()
            try saved.write(to: shard.dataDirectory.appendingPathComponent("dump.rdb"))
            try shard.restart(empty: false)
            let queue = try installation.queueServer.connect()
            _ = try queue.sendChecked(["FLUSHALL"])
            try runOnce(watcher)
            let stats = try WorkQueue().stats(on: QueueConnection(queue))
            let onShard = try GenerationStore(connection: try installation.connectMySQL()).members(onShard: shardID)
            #expect(!onShard.isEmpty)
            #expect(stats.waiting[.repair] == onShard.count, "every set of the restored shard is queued for rebuild")
        }
    }

    @Test("the audit removes a set its shard no longer holds for its member, rebuilds one MySQL records otherwise, and its self-check catches a wrong entry")
    func audit() async throws {
        // Every set is sampled (the default 50 of ~80 missed the wrong one a third of the time).
        let web = try await onThread { try ExactSets.harness(memberLimit: 80) }
        let context = web.core
        try await onThread {
            let connection = try web.installation.connectMySQL()
            defer { connection.close() }
            let members = web.installation.members.map(\.id)
            // An orphan: member X's set written (long ago) on a shard that is not X's.
            let x = members[0]
            let own = try web.shard(of: x)
            let stray = try #require(web.installation.shardIDs.first { $0 != own })
            try context.scores.writeSet(x, shard: stray, matches: [Match(id: members[1], tenths: 50)], answersVersion: "0", limit: ExactSets.topN, complete: true, generatedAt: 1_000_000_000)
            // A set whose answers version is not the write MySQL records (a restored or lost write).
            let y = members[2]
            let yShard = try web.shard(of: y)
            try context.scores.writeSet(y, shard: yShard, matches: [], answersVersion: "12345", limit: ExactSets.topN, complete: true, generatedAt: 1_000_000_000)
            // A wrong entry in a set whose write MySQL does record: only the self-check can see it.
            let z = members[3]
            let zShard = try web.shard(of: z)
            let zSet = try #require(try context.scores.readSet(z, shard: zShard))
            let victim = try #require(zSet.matches.first)
            let raw = try web.installation.shards[Int(zShard) - Int(web.installation.shardIDs[0])].connect()
            _ = try raw.sendChecked(["HSET", "scores:{\(z)}:\(victim.id % 64)", String(victim.id), victim.tenths == 0 ? "0.1" : "0.0"])

            let audit = SetAuditState(runtime: WorkerRuntime(core: context, settings: .testing(auditSample: 1_000)), quiet: .zero)
            try audit.run(context.sessions.thread())  // a first run records the snapshot's version
            try audit.run(context.sessions.thread())
            #expect(try context.scores.readSet(x, shard: stray) == nil, "the orphan is removed")
            #expect(try context.scores.readSet(x, shard: own) != nil, "the member's real set stays")
            let queue = try web.installation.queueServer.connect()
            var queued = Set<MemberID>()
            while let job = try WorkQueue().fetch(worker: "audit-test", on: QueueConnection(queue)) {
                queued.insert(job.member)
                try WorkQueue().complete(job, worker: "audit-test", on: QueueConnection(queue))
            }
            #expect(queued.contains(y), "the set that is not the recorded write is queued")
            #expect(queued.contains(z), "the self-check found the wrong entry")
            #expect((web.registry.sample("kindred_set_audit_mismatches_total") ?? 0) >= 1)
            try ExactSets.work(web, Array(queued))
        }
        try await onThread { try ExactSets.expectEverySetExact(web) }
    }
}

/// Runs one tick of a periodic service's body.
func runOnce(_ service: ThreadsService) throws {
    try service.runOnce()
}
