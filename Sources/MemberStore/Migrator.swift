import KindredSupport
import MariaDBClient

/// Applies the schema's missing migrations, in order, recording each in
/// `schema_migrations`.
///
/// Idempotent: a database that is up to date is left unchanged. Safe to run
/// from several processes at once: the whole run holds a MySQL user lock
/// (`GET_LOCK`) named after the database, so one process migrates while the
/// others wait, then find nothing left to do. The lock is released when the
/// run ends, and by the server if the connection dies. The name is
/// `kindred.migrate:` plus the MD5 of the database name rather than a fixed
/// `kindred.migrate`: user locks are server-wide, and two Kindred databases
/// on one server (tests, staging) must not wait on each other; hashing keeps
/// the name within MySQL's 64-character limit.
package enum Migrator {
    /// The user lock's name for the connection's current database.
    static let lockSQL = "SELECT GET_LOCK(CONCAT('kindred.migrate:', MD5(DATABASE())), ?)"
    static let unlockSQL = "SELECT RELEASE_LOCK(CONCAT('kindred.migrate:', MD5(DATABASE())))"

    /// Applies the migrations the database lacks and returns them, in the
    /// order applied (empty when it was up to date).
    ///
    /// - Parameters:
    ///   - migrations: the schema (``Schema/migrations``; tests pass their own).
    ///   - lockTimeout: how long to wait for another process's run to finish.
    /// - Throws: ``MemberStoreError`` (`noDatabase`, `migrationLockTimeout`,
    ///   `schemaTooNew`) or the `MariaDBError` of a failed statement; the
    ///   migrations applied before the failure stay recorded.
    @discardableResult
    @_spi(Testing) public static func migrate(
        _ connection: MariaDBConnection,
        migrations: [Migration] = Schema.migrations,
        lockTimeout: Duration = .seconds(60)
    ) throws -> [Migration] {
        validate(migrations)
        guard try connection.query("SELECT DATABASE()").first?.string(0) != nil else {
            throw MemberStoreError(.noDatabase, "the MySQL URL names no database: add /DATABASE to it")
        }
        let seconds = lockTimeout.inSeconds
        let granted = try connection.query(lockSQL, [.double(seconds)]).first?.int(0)
        guard granted == 1 else {
            throw MemberStoreError(
                .migrationLockTimeout,
                granted == 0
                    ? "another process has been migrating this database for longer than \(lockTimeout)"
                    : "MySQL refused the migration lock")
        }
        defer { _ = try? connection.query(unlockSQL) }

        try connection.execute(Schema.createMigrationsTable)
        let applied = Set(try appliedVersions(connection))
        let known = migrations.last?.version ?? 0
        if let newest = applied.max(), newest > known {
            throw MemberStoreError(
                .schemaTooNew,
                "the database is at schema version \(newest), newer than this program knows (\(known)): upgrade Kindred")
        }
        var done: [Migration] = []
        for migration in migrations where !applied.contains(migration.version) {
            for statement in migration.statements {
                try connection.execute(statement)
            }
            try connection.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, UTC_TIMESTAMP(6))",
                [SQLValue(migration.version), .text(migration.description)])
            done.append(migration)
        }
        return done
    }

    /// Throws ``MemberStoreError/Code/schemaOutdated`` unless every migration
    /// of `migrations` has been applied (programs that only read and write
    /// call this instead of migrating behind the operator's back).
    @_spi(Testing) public static func requireUpToDate(
        _ connection: MariaDBConnection, migrations: [Migration] = Schema.migrations
    ) throws {
        let applied = Set(try appliedVersions(connection))
        let missing = migrations.filter { !applied.contains($0.version) }
        guard missing.isEmpty else {
            throw MemberStoreError(
                .schemaOutdated,
                "the database lacks \(missing.count) schema migration(s) (first: \(missing[0].version), "
                    + "\(missing[0].description)): run `kindred migrate` first")
        }
    }

    /// The versions recorded in `schema_migrations`, ascending (empty when
    /// the table does not exist yet).
    @_spi(Testing) public static func appliedVersions(_ connection: MariaDBConnection) throws -> [Int] {
        let exists = try connection.query(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'schema_migrations'"
        ).first?.int(0) ?? 0
        guard exists > 0 else { return [] }
        return try connection.query("SELECT version FROM schema_migrations ORDER BY version").compactMap {
            $0.int(0).map(Int.init)
        }
    }

    /// Versions must be positive and strictly increasing: a list that is not
    /// is a programming error.
    private static func validate(_ migrations: [Migration]) {
        var previous = 0
        for migration in migrations {
            precondition(
                migration.version > previous,
                "Schema.migrations: version \(migration.version) must be greater than \(previous)")
            previous = migration.version
        }
    }
}
