import MariaDBClient
@_spi(Testing) import MemberStore
import TestSupport
import Testing

@Suite("Schema migrations", .offCooperativePool)
struct MigrationTests {
    /// Every table's `SHOW CREATE TABLE`, by name.
    static func schema(_ connection: MariaDBConnection) throws -> [String: String] {
        var tables: [String: String] = [:]
        for row in try connection.query("SHOW TABLES") {
            let name = row.string(0)!
            tables[name] = try connection.query("SHOW CREATE TABLE `\(name)`").first?.string(1)
        }
        return tables
    }

    @Test("a fresh database gets every migration, in order, recorded once; a second run changes nothing")
    func migrateTwice() throws {
        try withStore(migrate: false) { connection, _, _ in
            let applied = try Migrator.migrate(connection)
            #expect(applied.map(\.version) == Schema.migrations.map(\.version))
            #expect(try Migrator.appliedVersions(connection) == Schema.migrations.map(\.version))
            let before = try Self.schema(connection)
            #expect(Set(before.keys) == [
                "schema_migrations", "survey_questions", "members", "blocks", "shards", "member_shards", "generations",
                "backfill_runs", "backfill_failures", "evictions", "published",
            ])
            let answersVersions = try connection.query("SELECT version, CAST(applied_at AS CHAR) FROM schema_migrations ORDER BY version")

            let again = try Migrator.migrate(connection)
            #expect(again.isEmpty)
            #expect(try Self.schema(connection) == before)
            #expect(try connection.query("SELECT version, CAST(applied_at AS CHAR) FROM schema_migrations ORDER BY version") == answersVersions)
            try Migrator.requireUpToDate(connection)
            // Every statement is safe to run again (a migration interrupted half-way is rerun from its start).
            for migration in Schema.migrations {
                for statement in migration.statements { try connection.execute(statement) }
            }
            #expect(try Self.schema(connection) == before)
        }
    }

    @Test("tables are InnoDB and utf8mb4 although the server's default is latin1")
    func tableOptions() throws {
        try withStore { connection, _, _ in
            #expect(try connection.query("SELECT @@character_set_server").first?.string(0) == "latin1")
            let rows = try connection.query(
                "SELECT table_name, engine, table_collation FROM information_schema.tables WHERE table_schema = DATABASE()")
            #expect(rows.count == 11)
            for row in rows {
                #expect(row.string(1) == "InnoDB", "\(row.string(0) ?? "")")
                #expect(row.string(2)?.hasPrefix("utf8mb4") == true, "\(row.string(0) ?? "")")
            }
        }
    }

    @Test("two connections on two threads migrate at once: both succeed, each migration applied once")
    func concurrentMigrations() throws {
        let server = try MariaDBServer.shared()
        let database = try server.createDatabase()
        let results = Collector<[Int]>()
        try onThreads(2) { _ in
            let connection = try server.connect(database: database)
            defer { connection.close() }
            results.append(try Migrator.migrate(connection).map(\.version))
        }
        let all = results.all
        #expect(all.count == 2)
        #expect(all.flatMap { $0 }.sorted() == Schema.migrations.map(\.version), "each migration applied exactly once")
        let check = try server.connect(database: database)
        defer { check.close() }
        #expect(try check.query("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations").first.map {
            [$0.int(0), $0.int(1)]
        } == [Int64(Schema.migrations.count), Int64(Schema.migrations.count)])
    }

    @Test("appending a migration applies only the new one; a schema newer than the program is refused")
    func appendAndTooNew() throws {
        try withStore { connection, _, _ in
            let extra = Migration(
                version: Schema.latestVersion + 1, description: "test column",
                statements: ["ALTER TABLE members ADD COLUMN IF NOT EXISTS test_note VARCHAR(20) NULL"])
            #expect(throws: MemberStoreError.self) { try Migrator.requireUpToDate(connection, migrations: Schema.migrations + [extra]) }
            let applied = try Migrator.migrate(connection, migrations: Schema.migrations + [extra])
            #expect(applied == [extra])
            let error = try #require(throws: MemberStoreError.self) { try Migrator.migrate(connection) }
            #expect(error.code == .schemaTooNew)
            #expect(error.message.contains("\(Schema.latestVersion + 1)"))
        }
    }

    @Test("the migration lock is released after a run, and a held lock times out with a clear error")
    func lockTimeout() throws {
        try withStore(migrate: false) { connection, server, database in
            let holder = try server.connect(database: database)
            defer { holder.close() }
            #expect(try holder.query("SELECT GET_LOCK(CONCAT('kindred.migrate:', MD5(DATABASE())), 0)").first?.int(0) == 1)
            let error = try #require(throws: MemberStoreError.self) {
                try Migrator.migrate(connection, lockTimeout: .seconds(1))
            }
            #expect(error.code == .migrationLockTimeout)
            _ = try holder.query("SELECT RELEASE_LOCK(CONCAT('kindred.migrate:', MD5(DATABASE())))")
            #expect(try Migrator.migrate(connection).count == Schema.migrations.count)
            // Released after the run: another session can take it at once.
            #expect(try holder.query("SELECT GET_LOCK(CONCAT('kindred.migrate:', MD5(DATABASE())), 0)").first?.int(0) == 1)
        }
    }

    @Test("a connection without a database is a clear error")
    func noDatabase() throws {
        let server = try MariaDBServer.shared()
        let connection = try server.connect()
        defer { connection.close() }
        let error = try #require(throws: MemberStoreError.self) { try Migrator.migrate(connection) }
        #expect(error.code == .noDatabase)
    }
}
