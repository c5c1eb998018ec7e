import Foundation
import MariaDBClient
import MemberFormat
@_spi(Testing) import MemberStore
import Scoring
import Synthetic
import TestSupport

/// A fresh, migrated database on the shared server and a connection to it,
/// closed when `body` returns. Every test has its own database, so tests run
/// in parallel on one server.
func withStore<Result>(
    migrate: Bool = true, _ body: (MariaDBConnection, _ server: MariaDBServer, _ database: String) throws -> Result
) throws -> Result {
    let server = try MariaDBServer.shared()
    let database = try server.createDatabase()
    let connection = try server.connect(database: database)
    defer { connection.close() }
    if migrate { try Migrator.migrate(connection) }
    return try body(connection, server, database)
}

/// A directory for a test's files, removed when `body` returns.
func withTemporaryDirectory<Result>(_ body: (String) throws -> Result) throws -> Result {
    let directory = try makeTemporaryDirectory(prefix: "kindred-memberstore-test")
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory.path)
}

/// Writes `survey.json` and `members.jsonl` (the given lines, joined with
/// newlines) into `directory`; returns their paths.
@discardableResult
func writeFiles(_ directory: String, survey: Survey, lines: [String], name: String = "members.jsonl")
    throws -> (survey: String, members: String)
{
    let surveyPath = directory + "/survey.json"
    let membersPath = directory + "/" + name
    try SurveyFormat.encode(survey).write(toFile: surveyPath, atomically: true, encoding: .utf8)
    try (lines.joined(separator: "\n") + "\n").write(toFile: membersPath, atomically: true, encoding: .utf8)
    return (surveyPath, membersPath)
}

/// The member as the store and the population give it back: answers in
/// question order, blocks sorted and unique.
func normalized(_ member: Member) -> Member {
    var copy = member
    copy.answers.sort { $0.question < $1.question }
    copy.blocked = Array(Set(member.blocked)).sorted()
    return copy
}

/// A small survey: 12 questions with 2 to 8 options.
let smallSurvey = try! Survey(optionCounts: [2, 3, 4, 5, 6, 7, 8, 4, 4, 3, 2, 5])

/// A valid member of `smallSurvey`, varied by `id` and `variant`.
func sampleMember(_ id: MemberID, variant: Int = 0, lastActive: Int64? = 1_790_000_000, blocked: [MemberID] = [])
    -> Member
{
    var answers: [Answer] = []
    for q in 0..<smallSurvey.questionCount where (q + Int(id) + variant) % 5 != 0 {
        let k = smallSurvey.optionCounts[q]
        let option = (Int(id) + q + variant) % k
        answers.append(Answer(
            question: q, option: option, accepted: OptionSet8([option, (option + 1) % k]),
            importance: Importance(rawValue: UInt8((q + variant) % 5))!))
    }
    let age = 18 + Int(id % 50) + variant % 3
    return Member(
        id: id, gender: Gender(rawValue: UInt8(id % 3))!, seeking: GenderSet(rawValue: UInt8(id % 7) + 1), age: age,
        ageMin: max(18, age - 5), ageMax: min(120, age + 7 + variant), lastActive: lastActive, answers: answers,
        blocked: blocked)
}

/// Collects values from callbacks that may run on other threads.
final class Collector<Element: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `items` is only touched under `lock`.
    private let lock = NSLock()
    private var items: [Element] = []
    func append(_ item: Element) { lock.withLock { items.append(item) } }
    var all: [Element] { lock.withLock { items } }
}

/// Runs `body(i)` for i in 0..<count on `count` threads at once, started
/// together behind a barrier, and rethrows the first error.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    let errors = Collector<String>()
    let group = DispatchGroup()
    let barrier = DispatchSemaphore(value: 0)
    let ready = DispatchSemaphore(value: 0)
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            ready.signal()
            barrier.wait()
            do { try body(index) } catch { errors.append("thread \(index): \(error)") }
            group.leave()
        }
        thread.stackSize = 1 << 22
        thread.start()
    }
    for _ in 0..<count { ready.wait() }
    for _ in 0..<count { barrier.signal() }
    guard group.wait(timeout: .now() + 120) == .success else { throw TestSupportError("threads did not finish in 120 s") }
    if let first = errors.all.first { throw TestSupportError(first) }
}

/// A shard directory with a store session of its own, for a test that uses
/// it from one thread at a time (the directory holds no connection: each
/// caller passes its own session).
final class SessionDirectory: @unchecked Sendable {
    // @unchecked Sendable: a test hands it to one thread, which alone uses it.
    let directory: ShardDirectory
    let session: StoreSession

    init(_ connection: MariaDBConnection, unassignedTTL: Duration = .seconds(30)) {
        session = StoreSession(connection: connection)
        directory = ShardDirectory(unassignedTTL: unassignedTTL)
    }

    func shard(of member: MemberID) throws -> UInt32? { try directory.shard(of: member, in: session) }
    func assign(_ member: MemberID) throws -> UInt32 { try directory.assign(member, in: session) }
    func release(_ member: MemberID) throws { try directory.release(member, in: session) }
    func members(onShard shard: UInt32) throws -> [MemberID] { try directory.members(onShard: shard, in: session) }
    func reloadShards() throws { try directory.reloadShards(in: session) }
    func prefetch(_ members: some Collection<MemberID>) throws { try directory.prefetch(members, in: session) }
    func cachedShard(of member: MemberID) -> UInt32? { directory.cachedShard(of: member) }
    func clearCache() { directory.clearCache() }
}

/// Hands a value that is not `Sendable` to one other thread, which alone uses it from then on.
struct UncheckedSendable<Value>: @unchecked Sendable {
    // @unchecked Sendable: the test gives the value up when it hands it over.
    let value: Value
    init(_ value: Value) { self.value = value }
}
