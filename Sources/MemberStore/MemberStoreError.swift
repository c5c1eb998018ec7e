import MariaDBClient

/// A failure of the member store that is not a plain database error: a
/// survey that differs from the stored one, a bad shard address, a schema
/// newer than this program, MySQL unreachable for longer than a retry
/// policy allows.
///
/// Callers branch on ``code``; ``message`` is for people. Member data is
/// personal: messages name ids, fields and rules, never a member's values.
/// When the failure wraps a database error, ``underlying`` keeps it (its
/// message is already redacted by MariaDBClient).
package struct MemberStoreError: Error, Sendable, CustomStringConvertible {
    /// The category of a failure. New categories may be added without
    /// breaking callers: match the static members with a default case.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: Hashable, Sendable {
            case surveyMismatch, noSurvey, invalidMember, schemaTooNew, schemaOutdated, migrationLockTimeout, noDatabase
            case invalidShardAddress, invalidShardWeight, duplicateShard, unknownShard, noActiveShard, shardNotEmpty
            case unavailable, corruptRow
        }

        fileprivate let base: Base
        fileprivate init(_ base: Base) { self.base = base }

        /// The survey being imported differs from the one stored.
        package static let surveyMismatch = Code(.surveyMismatch)
        /// No survey is stored yet (nothing was imported).
        package static let noSurvey = Code(.noSurvey)
        /// A member that breaks SCORING.md's rules was given to the store.
        package static let invalidMember = Code(.invalidMember)
        /// The database was migrated by a newer Kindred than this one.
        package static let schemaTooNew = Code(.schemaTooNew)
        /// The database lacks migrations this program needs: run `kindred migrate`.
        package static let schemaOutdated = Code(.schemaOutdated)
        /// Another process held the migration lock for longer than the timeout.
        package static let migrationLockTimeout = Code(.migrationLockTimeout)
        /// The connection has no default database (the URL names none).
        package static let noDatabase = Code(.noDatabase)
        /// A shard address that is not `redis://[USER:PASSWORD@]HOST:PORT[/DB]`.
        package static let invalidShardAddress = Code(.invalidShardAddress)
        /// A shard weight out of range.
        package static let invalidShardWeight = Code(.invalidShardWeight)
        /// A shard with that address exists already.
        package static let duplicateShard = Code(.duplicateShard)
        /// No shard has that id.
        package static let unknownShard = Code(.unknownShard)
        /// A shard still has members assigned or sets stored: it cannot be removed.
        package static let shardNotEmpty = Code(.shardNotEmpty)
        /// No shard is active: a member cannot be assigned one.
        package static let noActiveShard = Code(.noActiveShard)
        /// MySQL stayed unreachable for longer than the retry policy allows.
        package static let unavailable = Code(.unavailable)
        /// A stored row does not decode (edited by hand, or a bug).
        package static let corruptRow = Code(.corruptRow)

        package var description: String {
            switch base {
            case .surveyMismatch: "survey mismatch"
            case .noSurvey: "no survey"
            case .invalidMember: "invalid member"
            case .schemaTooNew: "schema too new"
            case .schemaOutdated: "schema outdated"
            case .migrationLockTimeout: "migration lock timeout"
            case .noDatabase: "no database"
            case .invalidShardAddress: "invalid shard address"
            case .invalidShardWeight: "invalid shard weight"
            case .duplicateShard: "duplicate shard"
            case .unknownShard: "unknown shard"
            case .noActiveShard: "no active shard"
            case .shardNotEmpty: "shard not empty"
            case .unavailable: "unavailable"
            case .corruptRow: "corrupt row"
            }
        }
    }

    package let code: Code
    package let message: String
    /// The database error behind this one, if any.
    package let underlying: MariaDBError?

    package init(_ code: Code, _ message: String, underlying: MariaDBError? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    package var description: String {
        var text = message
        if let underlying { text += " (last error: \(underlying))" }
        return text
    }
}
