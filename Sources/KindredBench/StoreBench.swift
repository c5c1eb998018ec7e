import ArgumentParser
import Foundation
import KindredSupport
import MariaDBClient
import MemberFormat
@_spi(Testing) import MemberStore
import Scoring
import Synthetic

/// Member-store benchmarks against a running MariaDB (start one with
/// `scripts/bench-store-servers start`). The database named in the URL is
/// dropped and recreated, so its name must contain `bench`.
struct StoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Member store: import rate, snapshot load time, packed answers vs one row per answer.",
        subcommands: [StoreImportBench.self, StoreLoadBench.self, StoreLayoutBench.self]
    )
}

/// Where the benchmark database is: `--mysql`, else `KINDRED_MYSQL`.
struct StoreBenchOptions: ParsableArguments {
    @Option(help: "The MySQL URL (default: $KINDRED_MYSQL). Its database is dropped and recreated: the name must contain 'bench'.")
    var mysql: String?

    func configuration() throws -> MariaDBConnection.Configuration {
        guard let url = mysql ?? ProcessInfo.processInfo.environment["KINDRED_MYSQL"] else {
            throw ValidationError("give --mysql URL or set KINDRED_MYSQL (scripts/bench-store-servers start prints one)")
        }
        var configuration = try MariaDBConnection.Configuration(url: url)
        configuration.readTimeout = .seconds(600)
        guard let database = configuration.database, database.contains("bench") else {
            throw ValidationError("the benchmark drops its database: use one whose name contains 'bench'")
        }
        return configuration
    }

    /// A connection to a freshly created, migrated benchmark database.
    func freshDatabase() throws -> MariaDBConnection {
        var server = try configuration()
        let database = server.database!
        server.database = nil
        let admin = try MariaDBConnection(configuration: server)
        try admin.execute("DROP DATABASE IF EXISTS `\(database)`")
        try admin.execute("CREATE DATABASE `\(database)` CHARACTER SET utf8mb4")
        admin.close()
        let connection = try MariaDBConnection(configuration: configuration())
        try Migrator.migrate(connection)
        return connection
    }
}

func seconds(_ duration: Duration) -> Double {
    duration.inSeconds
}

func time<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let result = try body()
    return (result, seconds(ContinuousClock.now - start))
}

/// The process's peak resident set (VmHWM), in MB.
func peakResidentMB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
    else { return 0 }
    return Double(line.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0) / 1024
}

/// Data and index bytes of a table.
func tableMB(_ connection: MariaDBConnection, _ table: String) throws -> Double {
    let row = try connection.query(
        "SELECT data_length + index_length FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
        [.text(table)]).first
    return Double(row?.int(0) ?? 0) / 1e6
}

struct StoreImportBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a generated members file into a fresh database; members/s. Peer: parsing alone, same file."
    )

    @OptionGroup var options: StoreBenchOptions

    @Option(help: "The survey file.")
    var survey: String

    @Option(help: "The members file.")
    var members: String

    @Option(help: "Members per transaction.")
    var batch: Int = 1000

    @Option(help: "Parsing threads (default: up to 4, one per core).")
    var parsers: Int?

    @Option(name: .customLong("peer-lines"), help: "Lines parsed by the parse-only peer (0: skip it).")
    var peerLines: Int = 100_000

    func run() throws {
        let connection = try options.freshDatabase()
        defer { connection.close() }
        var importOptions = Importer.Options(batchSize: batch)
        if let parsers { importOptions.parserThreads = parsers }
        let importer = Importer(connection: connection, options: importOptions)
        let (summary, elapsed) = try time {
            try importer.run(surveyPath: survey, membersPath: members)
        }
        let stored = try MemberRepository.open(connection).counts().live
        try connection.execute("ANALYZE TABLE members, blocks")
        print(String(
            format: "import: %d members (%d distinct stored) in %.1f s = %.0f members/s; batch %d, %d parser threads; "
                + "members table %.0f MB, blocks %.1f MB; peak RSS %.0f MB",
            summary.progress.members, stored, elapsed, Double(summary.progress.members) / elapsed, batch,
            importOptions.parserThreads, try tableMB(connection, "members"), try tableMB(connection, "blocks"),
            peakResidentMB()))

        guard peerLines > 0 else { return }
        let parsedSurvey = try SurveyFormat.load(path: survey)
        let parser = MemberParser(survey: parsedSurvey)
        let reader = try LineReader(path: members)
        var parsed = 0
        struct Enough: Error {}
        let (_, parseTime) = time {
            try? reader.forEachLine { (line: UnsafeBufferPointer<UInt8>, number: Int) throws(Enough) in
                if case .success = parser.parse(line) { parsed += 1 }
                if number >= peerLines { throw Enough() }
            }
        }
        print(String(
            format: "peer, same run: parsing alone on one thread, %d lines: %.0f members/s (import runs at %.2fx that)",
            parsed, Double(parsed) / parseTime, (Double(summary.progress.members) / elapsed) / (Double(parsed) / parseTime)))
    }
}

struct StoreLoadBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load the snapshot of the benchmark database (run `store import` first); seconds. Peer: streaming the same rows without decoding."
    )

    @OptionGroup var options: StoreBenchOptions

    func run() throws {
        let connection = try MariaDBConnection(configuration: options.configuration())
        defer { connection.close() }
        var invalid = 0
        let ((population, _), elapsed) = try time {
            try SnapshotLoader(connection: connection).load(onInvalid: { _ in invalid += 1 })
        }
        print(String(
            format: "snapshot load: %d members in %.2f s = %.0f members/s (%d invalid rows); peak RSS %.0f MB",
            population.count, elapsed, Double(population.count) / elapsed, invalid, peakResidentMB()))

        var rows = 0
        var bytes = 0
        let (_, streamTime) = try time {
            try connection.forEachRow(
                "SELECT id, gender, seeking, age, age_min, age_max, last_active, answers FROM members WHERE deleted = 0"
            ) { row in
                rows += 1
                bytes += row.withUnsafeBytes(7) { $0.count } ?? 0
            }
        }
        print(String(
            format: "peer, same run: streaming the same %d rows (%.0f MB of answers) without decoding: %.2f s (load = %.1fx)",
            rows, Double(bytes) / 1e6, streamTime, elapsed / streamTime))
    }
}

/// Packed answers (one BLOB per member) against one row per answer, at a
/// small scale: the same synthetic members stored and loaded both ways.
struct StoreLayoutBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layout",
        abstract: "Packed answers BLOB vs one row per answer: import and load N synthetic members both ways."
    )

    @OptionGroup var options: StoreBenchOptions

    @Option(help: "Members.")
    var members: Int = 20_000

    @Option(help: "Seed of the synthetic population.")
    var seed: UInt64 = 1

    func run() throws {
        let synthetic = SyntheticPopulation(members: members, seed: seed)
        let all = (0..<members).map(synthetic.member)
        let answers = all.reduce(0) { $0 + $1.answers.count }
        print("layout: \(members) synthetic members, Q = \(synthetic.survey.questionCount), \(answers) answers "
            + String(format: "(%.1f per member); batches of 1000 members, one transaction each", Double(answers) / Double(members)))

        // Packed: the store as built.
        let connection = try options.freshDatabase()
        defer { connection.close() }
        try SurveyStore.store(synthetic.survey, connection)
        let repository = MemberRepository(connection: connection, survey: synthetic.survey)
        let (_, packedWrite) = try time {
            for start in stride(from: 0, to: members, by: 1000) {
                try repository.upsert(all[start..<min(members, start + 1000)])
            }
        }
        try connection.execute("ANALYZE TABLE members")
        let packedSize = try tableMB(connection, "members")
        let (packedLoaded, packedLoad) = try time { try SnapshotLoader(connection: connection).load().population.count }

        // Rows: one row per answer.
        try connection.execute(
            """
            CREATE TABLE row_members (id INT UNSIGNED NOT NULL PRIMARY KEY, gender TINYINT UNSIGNED NOT NULL,
              seeking TINYINT UNSIGNED NOT NULL, age TINYINT UNSIGNED NOT NULL, age_min TINYINT UNSIGNED NOT NULL,
              age_max TINYINT UNSIGNED NOT NULL, last_active BIGINT NULL) ENGINE=InnoDB
            """)
        try connection.execute(
            """
            CREATE TABLE row_answers (member_id INT UNSIGNED NOT NULL, question SMALLINT UNSIGNED NOT NULL,
              answer TINYINT UNSIGNED NOT NULL, accept TINYINT UNSIGNED NOT NULL, importance TINYINT UNSIGNED NOT NULL,
              PRIMARY KEY (member_id, question)) ENGINE=InnoDB
            """)
        let memberRows = BatchInsert(
            "INSERT INTO row_members (id, gender, seeking, age, age_min, age_max, last_active) VALUES", columnsPerRow: 7,
            suffix: " ON DUPLICATE KEY UPDATE gender = VALUES(gender), seeking = VALUES(seeking), age = VALUES(age), "
                + "age_min = VALUES(age_min), age_max = VALUES(age_max), last_active = VALUES(last_active)")
        let answerRows = BatchInsert(
            "INSERT INTO row_answers (member_id, question, answer, accept, importance) VALUES", columnsPerRow: 5,
            maxRowsPerStatement: 10_000)
        let (_, rowsWrite) = try time {
            for start in stride(from: 0, to: members, by: 1000) {
                let slice = all[start..<min(members, start + 1000)]
                try connection.transaction { connection in
                    var values: [SQLValue] = []
                    for m in slice {
                        values += [
                            .uint(UInt64(m.id)), SQLValue(m.gender.rawValue), SQLValue(m.seeking.rawValue),
                            SQLValue(m.age), SQLValue(m.ageMin), SQLValue(m.ageMax), m.lastActive.map(SQLValue.int) ?? .null,
                        ]
                    }
                    try connection.insert(memberRows, values: values)
                    // An upsert replaces the answers: delete, then insert.
                    let ids = slice.map { SQLValue.uint(UInt64($0.id)) }
                    try connection.execute(
                        "DELETE FROM row_answers WHERE member_id BETWEEN ? AND ?", [ids.first!, ids.last!])
                    var answerValues: [SQLValue] = []
                    answerValues.reserveCapacity(slice.count * 100 * 5)
                    for m in slice {
                        for a in m.answers {
                            answerValues += [
                                .uint(UInt64(m.id)), SQLValue(a.question), SQLValue(a.option),
                                SQLValue(a.accepted.rawValue), SQLValue(a.importance.rawValue),
                            ]
                        }
                    }
                    try connection.insert(answerRows, values: answerValues)
                }
            }
        }
        try connection.execute("ANALYZE TABLE row_members")
        try connection.execute("ANALYZE TABLE row_answers")
        let rowsSize = try tableMB(connection, "row_members") + tableMB(connection, "row_answers")
        let (rowsLoaded, rowsLoad) = try time { () throws -> Int in
            let population = Population(survey: synthetic.survey, capacity: members)
            var pending: [MemberID: Member] = [:]
            try connection.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            try connection.forEachRow("SELECT id, gender, seeking, age, age_min, age_max, last_active FROM row_members") { row in
                let id = MemberID(row.uint(0)!)
                pending[id] = Member(
                    id: id, gender: Gender(rawValue: UInt8(row.uint(1)!))!, seeking: GenderSet(rawValue: UInt8(row.uint(2)!)),
                    age: Int(row.uint(3)!), ageMin: Int(row.uint(4)!), ageMax: Int(row.uint(5)!), lastActive: row.int(6))
            }
            var current: MemberID = 0
            var answers: [Answer] = []
            func flush() throws {
                guard current != 0, var member = pending.removeValue(forKey: current) else { return }
                member.answers = answers
                try population.upsert(member)
            }
            try connection.forEachRow(
                "SELECT member_id, question, answer, accept, importance FROM row_answers ORDER BY member_id, question"
            ) { row in
                let id = MemberID(row.uint(0)!)
                if id != current {
                    try flush()
                    current = id
                    answers.removeAll(keepingCapacity: true)
                }
                answers.append(Answer(
                    question: Int(row.uint(1)!), option: Int(row.uint(2)!), accepted: OptionSet8(rawValue: UInt8(row.uint(3)!)),
                    importance: Importance(rawValue: UInt8(row.uint(4)!))!))
            }
            try flush()
            for member in pending.values { try population.upsert(member) }  // members without answers
            try connection.commit()
            population.organize()
            return population.count
        }
        print("| layout | import (s) | import members/s | load (s) | load members/s | table MB (data + indexes) |")
        print("| --- | --- | --- | --- | --- | --- |")
        print(String(format: "| packed BLOB (2 B/question) | %.2f | %.0f | %.2f | %.0f | %.1f |",
                     packedWrite, Double(members) / packedWrite, packedLoad, Double(packedLoaded) / packedLoad, packedSize))
        print(String(format: "| one row per answer | %.2f | %.0f | %.2f | %.0f | %.1f |",
                     rowsWrite, Double(members) / rowsWrite, rowsLoad, Double(rowsLoaded) / rowsLoad, rowsSize))
        print(String(format: "rows / packed: import %.1fx slower, load %.1fx slower, %.1fx the space",
                     rowsWrite / packedWrite, rowsLoad / packedLoad, rowsSize / packedSize))
    }
}
