/// A failure reported by the server or by libmariadb, or a configuration that
/// cannot be used.
///
/// Callers branch on ``code`` (a small, stable set of categories) or on the
/// `is…` properties; ``errorNumber`` and ``sqlState`` carry the exact MariaDB
/// diagnosis for logs.
///
/// Member data is personal: the ``message`` never holds a bound parameter
/// value. Server messages whose templates quote the offending value (a
/// duplicate key, an invalid integer, …) have that value replaced with
/// `<redacted>` before the error is built, and the SQL kept for context is
/// the prepared text with `?` placeholders, never the values.
package struct MariaDBError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The category of a failure. New categories may be added in later
    /// versions without breaking callers: match on the static members, with a
    /// default case.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: Hashable, Sendable {
            case connectionFailed
            case connectionLost
            case accessDenied
            case duplicateKey
            case deadlock
            case lockWaitTimeout
            case server
            case client
            case invalidConfiguration
        }

        fileprivate let base: Base
        fileprivate init(_ base: Base) { self.base = base }

        /// The server could not be reached (refused, unknown host, timeout while connecting).
        package static let connectionFailed = Code(.connectionFailed)
        /// An established connection broke: the server went away, closed the
        /// connection or stopped answering within the read timeout.
        package static let connectionLost = Code(.connectionLost)
        /// Wrong user or password, or no privilege on the database.
        package static let accessDenied = Code(.accessDenied)
        /// A unique or primary key would be duplicated (1062, 1586).
        package static let duplicateKey = Code(.duplicateKey)
        /// InnoDB chose this transaction as a deadlock victim (1213); it was rolled back.
        package static let deadlock = Code(.deadlock)
        /// A row lock was not granted within `innodb_lock_wait_timeout` (1205).
        package static let lockWaitTimeout = Code(.lockWaitTimeout)
        /// Any other error the server reported.
        package static let server = Code(.server)
        /// Any other error libmariadb reported.
        package static let client = Code(.client)
        /// A connection URL or configuration that cannot be used.
        package static let invalidConfiguration = Code(.invalidConfiguration)

        package var description: String {
            switch base {
            case .connectionFailed: "connection failed"
            case .connectionLost: "connection lost"
            case .accessDenied: "access denied"
            case .duplicateKey: "duplicate key"
            case .deadlock: "deadlock"
            case .lockWaitTimeout: "lock wait timeout"
            case .server: "server error"
            case .client: "client error"
            case .invalidConfiguration: "invalid configuration"
            }
        }
    }

    /// The category callers branch on.
    package let code: Code
    /// The MariaDB error number: 1000-1999 and 3000+ from the server,
    /// 2000-2999 and 5000+ from libmariadb, 0 when neither reported it.
    package let errorNumber: UInt32
    /// The five-character SQLSTATE ("23000", "40001", "HY000", …).
    package let sqlState: String
    /// The server's or library's message, with quoted values redacted.
    package let message: String
    /// What the connection was doing: "connect", "prepare", "execute", "fetch", …
    package let operation: String
    /// The SQL being prepared or executed (with `?` placeholders), if any.
    package let sql: String?

    /// Builds an error; `message` is redacted here, so every error carries a
    /// safe message whichever path built it.
    init(errorNumber: UInt32, sqlState: String, message: String, operation: String, sql: String? = nil) {
        self.code = Self.classify(errorNumber)
        self.errorNumber = errorNumber
        self.sqlState = sqlState
        self.message = Self.redactValues(in: message, errorNumber: errorNumber)
        self.operation = operation
        self.sql = sql
    }

    /// An error raised by this module itself (a bad URL, a closed handle after
    /// a failed reconnect): no server errno.
    init(code: Code, errorNumber: UInt32 = 0, message: String, operation: String) {
        self.code = code
        self.errorNumber = errorNumber
        self.sqlState = "HY000"
        self.message = message
        self.operation = operation
        self.sql = nil
    }

    /// True when the connection can no longer be used and must be
    /// re-established with ``MariaDBConnection/reconnect()``: the server went
    /// away (2006), the connection broke mid-query or hit the read timeout
    /// (2013, 2055), the server refused or could not be reached (2002, 2003),
    /// or the server killed or shut down the session (1927, 1053).
    package var isConnectionLost: Bool {
        code == .connectionLost || code == .connectionFailed
    }

    /// True for an access denied (1045) on a login without TLS, which is
    /// also how a server with `require_secure_transport=ON` refuses a
    /// plain-text login: the password may be right and TLS the fix. The
    /// ``message`` then ends with a hint saying so.
    package var mayNeedTLS: Bool {
        code == .accessDenied && message.hasSuffix(Self.plainTextLoginHint)
    }

    /// Appended to a 1045 message when the login was made without TLS.
    static let plainTextLoginHint =
        " (without TLS: if the server requires secure transport, add ?ssl-mode=VERIFY_CA&ssl-ca=PATH)"

    /// A unique or primary key conflict (1062 or 1586).
    package var isDuplicateKey: Bool { code == .duplicateKey }

    /// The transaction was a deadlock victim (1213) and was rolled back.
    package var isDeadlock: Bool { code == .deadlock }

    /// A lock wait timed out (1205). Only the statement was rolled back unless
    /// the server runs with `innodb_rollback_on_timeout`.
    package var isLockWaitTimeout: Bool { code == .lockWaitTimeout }

    /// A transient conflict after which running the whole transaction again is
    /// the expected recovery (deadlock or lock wait timeout).
    package var isRetryableTransactionFailure: Bool { isDeadlock || isLockWaitTimeout }

    package var description: String {
        var text = "MariaDBError(\(code), \(operation)"
        if errorNumber != 0 { text += ", \(errorNumber)/\(sqlState)" }
        text += "): \(message)"
        if let sql {
            let limit = 160
            text += sql.count > limit ? " [SQL: \(sql.prefix(limit))…]" : " [SQL: \(sql)]"
        }
        return text
    }

    // MARK: - Classification

    private static func classify(_ errorNumber: UInt32) -> Code {
        switch errorNumber {
        case 2002, 2003, 2005:
            return .connectionFailed
        case 2006, 2013, 2055, 1927, 1053:
            return .connectionLost
        case 1044, 1045, 1698:
            return .accessDenied
        case 1062, 1586:
            return .duplicateKey
        case 1213:
            return .deadlock
        case 1205:
            return .lockWaitTimeout
        case 2000..<3000, 5000..<6000:
            return .client
        default:
            return .server
        }
    }

    // MARK: - Redaction

    /// Server errors whose message template quotes the offending value
    /// (`Duplicate entry '%s' for key '%s'`, `Incorrect %s value: '%s' for
    /// column …`, …). The value is the first quoted segment.
    private static let valueQuotingErrors: Set<UInt32> = [
        1062,  // ER_DUP_ENTRY
        1586,  // ER_DUP_ENTRY_WITH_KEY_NAME
        1292,  // ER_TRUNCATED_WRONG_VALUE
        1300,  // ER_INVALID_CHARACTER_STRING
        1366,  // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
        1367,  // ER_ILLEGAL_VALUE_FOR_TYPE
        1411,  // ER_WRONG_VALUE_FOR_TYPE
        1525,  // ER_WRONG_VALUE
        1690,  // ER_DATA_OUT_OF_RANGE (quotes the expression)
        1918,  // ER_BAD_DATA
    ]

    /// Removes member data from a server message. The redaction runs from the
    /// first quote to the last `' for ` that follows it (where the templates
    /// resume with a key or column name), or to the end of the message when
    /// there is none (the message may have been cut at 512 bytes inside the
    /// value). A value that itself contains `' for ` makes the redaction longer,
    /// never shorter.
    static func redactValues(in message: String, errorNumber: UInt32) -> String {
        if errorNumber == 1977 {  // ER_CANNOT_CONVERT_CHARACTER prints the bytes in hex, unquoted.
            return "Cannot convert a character between character sets (value redacted)"
        }
        guard valueQuotingErrors.contains(errorNumber),
              let open = message.firstIndex(of: "'")
        else { return message }
        let afterOpen = message.index(after: open)
        if let resume = lastOccurrence(of: "' for ", in: message[afterOpen...]) {
            return String(message[..<open]) + "'<redacted>" + String(message[resume...])
        }
        return String(message[..<open]) + "'<redacted>'"
    }

    /// Where the last occurrence of `needle` starts in `text` (no Foundation).
    private static func lastOccurrence(of needle: String, in text: Substring) -> String.Index? {
        let pattern = Array(needle.utf8)
        let bytes = Array(text.utf8)
        guard pattern.count <= bytes.count else { return nil }
        for start in stride(from: bytes.count - pattern.count, through: 0, by: -1)
        where bytes[start..<(start + pattern.count)].elementsEqual(pattern) {
            return text.utf8.index(text.utf8.startIndex, offsetBy: start)
        }
        return nil
    }
}
