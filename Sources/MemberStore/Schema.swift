/// One step of the schema: a version, a description, and the statements
/// that take the schema there.
///
/// MySQL commits DDL implicitly, so a migration's statements are not atomic
/// together: a migration interrupted half-way is run again from its first
/// statement. Every statement must therefore be safe to run twice
/// (`CREATE TABLE IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS`,
/// `CREATE INDEX IF NOT EXISTS`, ...). The version is recorded in
/// `schema_migrations` after the last statement succeeds.
package struct Migration: Sendable, Hashable {
    package let version: Int
    package let description: String
    package let statements: [String]

    package init(version: Int, description: String, statements: [String]) {
        self.version = version
        self.description = description
        self.statements = statements
    }
}

/// The schema, as an ordered list of migrations.
///
/// To change the schema, append a ``Migration`` with the next version to
/// ``migrations``; never edit or reorder one that has shipped. Tables are
/// InnoDB in utf8mb4 whatever the server's default character set.
///
/// Types chosen:
/// - ids are `INT UNSIGNED` (SCORING.md: below 2^32), ages `TINYINT UNSIGNED`;
/// - `gender` is ``Scoring/Gender``'s raw value (0 man, 1 woman, 2 nonbinary),
///   `seeking` a ``Scoring/GenderSet`` bit set;
/// - `answers` is ``PackedAnswers`` (2 bytes per question, ~200 bytes at
///   Q = 100, stored inline in the row by InnoDB's DYNAMIC format);
/// - `last_active` is Unix seconds, NULL when never active;
/// - `changed_at` is `UTC_TIMESTAMP(6)` of the last write that changed the
///   row: UTC rather than `NOW(6)` so that neither the session time zone nor
///   a daylight-saving change can move it backwards (a DATETIME has no zone);
/// - `generated_at` is Unix milliseconds, as the score store stamps it.
package enum Schema {
    package static let migrations: [Migration] = [
        Migration(
            version: 1,
            description: "survey, members and blocks",
            statements: [
                """
                CREATE TABLE IF NOT EXISTS survey_questions (
                  question SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
                  options TINYINT UNSIGNED NOT NULL
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """,
                """
                CREATE TABLE IF NOT EXISTS members (
                  id INT UNSIGNED NOT NULL PRIMARY KEY,
                  gender TINYINT UNSIGNED NOT NULL,
                  seeking TINYINT UNSIGNED NOT NULL,
                  age TINYINT UNSIGNED NOT NULL,
                  age_min TINYINT UNSIGNED NOT NULL,
                  age_max TINYINT UNSIGNED NOT NULL,
                  last_active BIGINT NULL,
                  answers BLOB NOT NULL,
                  answers_version BIGINT UNSIGNED NOT NULL,
                  deleted TINYINT UNSIGNED NOT NULL DEFAULT 0,
                  changed_at DATETIME(6) NOT NULL,
                  KEY members_changed_at (changed_at),
                  KEY members_last_active (last_active)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """,
                """
                CREATE TABLE IF NOT EXISTS blocks (
                  member_id INT UNSIGNED NOT NULL,
                  blocked_id INT UNSIGNED NOT NULL,
                  PRIMARY KEY (member_id, blocked_id),
                  KEY blocks_blocked_id (blocked_id)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """,
            ]),
        Migration(
            version: 2,
            description: "shards and the member-to-shard directory",
            statements: [
                """
                CREATE TABLE IF NOT EXISTS shards (
                  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                  address VARCHAR(255) NOT NULL,
                  weight INT UNSIGNED NOT NULL,
                  state ENUM('active','draining','down') NOT NULL DEFAULT 'active',
                  memory_budget BIGINT UNSIGNED NULL,
                  created_at DATETIME(6) NOT NULL,
                  UNIQUE KEY shards_address (address)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """,
                """
                CREATE TABLE IF NOT EXISTS member_shards (
                  member_id INT UNSIGNED NOT NULL PRIMARY KEY,
                  shard_id INT UNSIGNED NOT NULL,
                  assigned_at DATETIME(6) NOT NULL,
                  KEY member_shards_shard_id (shard_id)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """,
            ]),
        Migration(
            version: 3,
            description: "generation bookkeeping",
            statements: [
                """
                CREATE TABLE IF NOT EXISTS generations (
                  member_id INT UNSIGNED NOT NULL PRIMARY KEY,
                  shard_id INT UNSIGNED NOT NULL,
                  answers_version BIGINT UNSIGNED NOT NULL,
                  generated_at BIGINT NOT NULL,
                  match_count INT UNSIGNED NOT NULL,
                  KEY generations_shard_id (shard_id)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """,
            ]),
        Migration(
            version: 4,
            description: "backfill and eviction runs, their failures, evictions",
            statements: [
                // One row per `kindred backfill` / `kindred evict` run. A run is
                // keyed by its normalized selection (`selection_key`); every
                // selected member with an id <= `checkpoint` is done, and the
                // counters describe exactly those members. `open_key` equals
                // `selection_key` while the run is open and is NULL once it is
                // finished or abandoned, so at most one open run per selection
                // (a unique key ignores NULLs). `skip_offers` is no longer
                // written or read (it only repeated `command`); it stays so a
                // schema migrated by this version is the one older binaries know.
                """
                CREATE TABLE IF NOT EXISTS backfill_runs (
                  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                  command VARCHAR(16) NOT NULL,
                  selection_key VARCHAR(255) NOT NULL,
                  open_key VARCHAR(255) NULL,
                  selection VARCHAR(1024) NOT NULL,
                  now_at BIGINT NOT NULL,
                  skip_offers TINYINT UNSIGNED NOT NULL DEFAULT 0,
                  state ENUM('open','finished','abandoned') NOT NULL DEFAULT 'open',
                  checkpoint INT UNSIGNED NOT NULL DEFAULT 0,
                  planned INT UNSIGNED NOT NULL DEFAULT 0,
                  done_count INT UNSIGNED NOT NULL DEFAULT 0,
                  skipped_count INT UNSIGNED NOT NULL DEFAULT 0,
                  gone_count INT UNSIGNED NOT NULL DEFAULT 0,
                  failed_count INT UNSIGNED NOT NULL DEFAULT 0,
                  sessions INT UNSIGNED NOT NULL DEFAULT 1,
                  started_at DATETIME(6) NOT NULL,
                  updated_at DATETIME(6) NOT NULL,
                  finished_at DATETIME(6) NULL,
                  UNIQUE KEY backfill_runs_open_key (command, open_key),
                  KEY backfill_runs_selection_key (selection_key)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """,
                """
                CREATE TABLE IF NOT EXISTS backfill_failures (
                  run_id INT UNSIGNED NOT NULL,
                  member_id INT UNSIGNED NOT NULL,
                  reason VARCHAR(512) NOT NULL,
                  PRIMARY KEY (run_id, member_id)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """,
                // Members whose set `kindred evict` dropped, and where it was:
                // `cleared` once the shard confirmed the removal, so an
                // eviction stopped between MySQL and the shard (or a shard
                // that was down) is finished by the next evict. The repair
                // sweep leaves a member alone while they hold no shard and
                // were not active since their eviction.
                """
                CREATE TABLE IF NOT EXISTS evictions (
                  member_id INT UNSIGNED NOT NULL PRIMARY KEY,
                  shard_id INT UNSIGNED NULL,
                  generation_shard_id INT UNSIGNED NULL,
                  evicted_at BIGINT NOT NULL,
                  run_id INT UNSIGNED NULL,
                  cleared TINYINT UNSIGNED NOT NULL DEFAULT 0,
                  KEY evictions_cleared (cleared, member_id)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """,
            ]),
        Migration(
            version: 5,
            description: "publication of members' records into other members' sets; set floors and coverage; shard write sequence",
            statements: [
                // The records of a member whose entries may stand in other
                // members' sets (SCORING.md, "Matches while the population
                // changes"): one row per answers version. A row with
                // `settled_at` set is the record every set's entry for the
                // member was last made to agree with; a row without is an
                // intent (a publication that started and may have placed
                // some entries). Version 0 is the tombstone of a deleted
                // member's settled removal (no record). `blocked` is the
                // record's blocked ids in decimal, comma-separated. Personal
                // data: a deleted member keeps only the tombstone.
                """
                CREATE TABLE IF NOT EXISTS published (
                  member_id INT UNSIGNED NOT NULL,
                  answers_version BIGINT UNSIGNED NOT NULL,
                  gender TINYINT UNSIGNED NOT NULL DEFAULT 0,
                  seeking TINYINT UNSIGNED NOT NULL DEFAULT 0,
                  age TINYINT UNSIGNED NOT NULL DEFAULT 0,
                  age_min TINYINT UNSIGNED NOT NULL DEFAULT 0,
                  age_max TINYINT UNSIGNED NOT NULL DEFAULT 0,
                  answers BLOB NOT NULL,
                  blocked MEDIUMTEXT NOT NULL,
                  settled_at DATETIME(6) NULL,
                  PRIMARY KEY (member_id, answers_version)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """,
                // A set's floor (NULL: the set holds every candidate) and
                // the time up to which its scan saw every change
                // (`covered_at`); `recorded_at` lets processes follow the
                // table incrementally, as the snapshot follows `members`.
                "ALTER TABLE generations ADD COLUMN IF NOT EXISTS floor_tenths TINYINT UNSIGNED NULL",
                "ALTER TABLE generations ADD COLUMN IF NOT EXISTS floor_id INT UNSIGNED NULL",
                "ALTER TABLE generations ADD COLUMN IF NOT EXISTS covered_at DATETIME(6) NULL",
                "ALTER TABLE generations ADD COLUMN IF NOT EXISTS recorded_at DATETIME(6) NOT NULL DEFAULT '1970-01-01 00:00:00.000000'",
                "CREATE INDEX IF NOT EXISTS generations_recorded_at ON generations (recorded_at)",
                // The highest value each shard's write sequence was seen at:
                // a shard that answers with a lower one was restored from an
                // older copy of its data.
                "ALTER TABLE shards ADD COLUMN IF NOT EXISTS sequence BIGINT UNSIGNED NOT NULL DEFAULT 0",
                // An upgrade from a schema without publication: every live
                // member's current record counts as published (run
                // `kindred backfill --all` after the upgrade so that every
                // set agrees with it).
                "SET SESSION group_concat_max_len = 1073741824",
                """
                INSERT IGNORE INTO published
                  (member_id, answers_version, gender, seeking, age, age_min, age_max, answers, blocked, settled_at)
                SELECT m.id, m.answers_version, m.gender, m.seeking, m.age, m.age_min, m.age_max, m.answers,
                  COALESCE((SELECT GROUP_CONCAT(b.blocked_id ORDER BY b.blocked_id) FROM blocks b WHERE b.member_id = m.id), ''),
                  UTC_TIMESTAMP(6)
                FROM members m WHERE m.deleted = 0
                """,
            ]),
    ]

    /// The bookkeeping table itself, created before any migration runs.
    static let createMigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version INT UNSIGNED NOT NULL PRIMARY KEY,
          description VARCHAR(255) NOT NULL,
          applied_at DATETIME(6) NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """

    /// The version the newest migration takes the schema to.
    package static var latestVersion: Int { migrations.last?.version ?? 0 }
}
