import Foundation
import KindredSupport
import MariaDBClient
import MemberFormat
@_spi(Testing) import MemberStore
import Scoring
import Synthetic
import TestSupport
import Testing

/// Imports while MySQL dies. Each test starts its own server, because it
/// kills or restarts it.
@Suite("Import while MySQL fails", .offCooperativePool)
struct ImportFailureTests {
    /// 3000 synthetic members (Q = 100, ~2% with blocks) written as files.
    static func population(_ directory: String) throws -> (files: (survey: String, members: String), survey: Survey) {
        let synthetic = SyntheticPopulation(members: 3000, seed: 42)
        try synthetic.write(to: directory)
        return ((directory + "/survey.json", directory + "/members.jsonl"), synthetic.survey)
    }

    /// Every line of the file is stored exactly once and equal to what was parsed.
    static func expectComplete(_ connection: MariaDBConnection, files: (survey: String, members: String), survey: Survey)
        throws
    {
        let lines = try String(contentsOfFile: files.members, encoding: .utf8).split(separator: "\n").map(String.init)
        let expected = expectedMembers(lines, survey: survey)
        let repository = MemberRepository(connection: connection, survey: survey)
        #expect(try connection.query("SELECT COUNT(*) FROM members").first?.int(0) == Int64(expected.count))
        #expect(try repository.memberIDs(.all, limit: 100_000) == expected.keys.sorted())
        for (id, member) in expected where id % 7 == 0 || !member.blocked.isEmpty {
            #expect(try repository.member(id) == member, "member \(id)")
        }
        try expectWholeMembers(connection, survey: survey)
    }

    @Test("SIGKILL between batches, restart: the import reconnects with backoff and completes, every member stored once and whole")
    func killedAndRestartedResumes() throws {
        let server = try MariaDBServer.start()
        let database = try server.createDatabase()
        let connection = try server.connect(database: database)
        defer { connection.close() }
        try Migrator.migrate(connection)
        try withTemporaryDirectory { directory in
            let (files, survey) = try Self.population(directory)
            var retries: [RetryEvent] = []
            var killed = false
            var restarter: ThreadHandle?
            let importer = Importer(connection: connection, options: .init(
                batchSize: 200, retry: RetryPolicy(initialDelay: .milliseconds(50), giveUpAfter: .seconds(60))))
            let summary = try importer.run(
                surveyPath: files.survey, membersPath: files.members,
                onProgress: { progress in
                    guard progress.batches == 3, !killed else { return }
                    killed = true
                    server.kill()  // waits until mariadbd is gone: the next batch meets a dead server
                    restarter = startThread(name: "restarter") { try? server.restart() }
                },
                onRetry: { retries.append($0) })
            #expect(restarter?.join(timeout: .seconds(60)) == true, "the restart finishes within 60 s")
            #expect(killed)
            #expect(!retries.isEmpty, "the import met the dead server and retried")
            #expect(retries.allSatisfy { $0.error.isConnectionLost })
            #expect(summary.progress.members == 3000 && summary.progress.batches == 15)
            try Self.expectComplete(connection, files: files, survey: survey)
        }
    }

    @Test("a clean restart (SIGTERM) while batches are being written: the import completes, every member stored once and whole")
    func restartedUnderRunningImport() throws {
        let server = try MariaDBServer.start()
        let database = try server.createDatabase()
        let connection = try server.connect(database: database)
        defer { connection.close() }
        try Migrator.migrate(connection)
        try withTemporaryDirectory { directory in
            let (files, survey) = try Self.population(directory)
            var restarter: ThreadHandle?
            var triggered = false
            let importer = Importer(connection: connection, options: .init(
                batchSize: 100, retry: RetryPolicy(initialDelay: .milliseconds(50), giveUpAfter: .seconds(60))))
            let summary = try importer.run(
                surveyPath: files.survey, membersPath: files.members,
                onProgress: { progress in
                    guard progress.batches == 2, !triggered else { return }
                    triggered = true
                    // The shutdown runs concurrently with the next batches, so it may cut one mid-transaction.
                    restarter = startThread(name: "restarter") { try? server.restart() }
                })
            #expect(restarter?.join(timeout: .seconds(60)) == true, "the restart finishes within 60 s")
            #expect(server.pid != nil, "the server is back")
            #expect(summary.progress.members == 3000)
            try Self.expectComplete(connection, files: files, survey: survey)
        }
    }

    @Test("MySQL gone for good: the import gives up after the policy's budget with a clear error, and what was stored is whole")
    func givesUp() throws {
        let server = try MariaDBServer.start()
        let database = try server.createDatabase()
        let connection = try server.connect(database: database)
        defer { connection.close() }
        try Migrator.migrate(connection)
        try withTemporaryDirectory { directory in
            let (files, survey) = try Self.population(directory)
            let importer = Importer(connection: connection, options: .init(
                batchSize: 250, retry: RetryPolicy(initialDelay: .milliseconds(50), giveUpAfter: .seconds(2))))
            let clock = ContinuousClock()
            let started = clock.now
            var retries = 0
            let failure = try #require(throws: ImportFailure.self) {
                try importer.run(
                    surveyPath: files.survey, membersPath: files.members,
                    onProgress: { progress in if progress.batches == 2 { server.kill() } },
                    onRetry: { _ in retries += 1 })
            }
            #expect(clock.now - started < .seconds(20), "bounded by the retry budget")
            #expect(retries > 1)
            #expect(failure.progress.members == 500 && failure.progress.batches == 2)
            let underlying = try #require(failure.underlying as? MemberStoreError)
            #expect(underlying.code == .unavailable)
            #expect(failure.description.contains("stopped after storing 500 members"))
            #expect(failure.description.contains("importing the same file again is safe"))

            try server.restart()
            let check = try server.connect(database: database)
            defer { check.close() }
            #expect(try check.query("SELECT COUNT(*) FROM members").first?.int(0) == 500, "exactly the committed batches")
            try expectWholeMembers(check, survey: survey)
        }
    }
}
