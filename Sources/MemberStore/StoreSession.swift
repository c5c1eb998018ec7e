import KindredSupport
import MariaDBClient
import Scoring

/// What a ``StoreSession`` needs to open (and reopen) its connection: where
/// MySQL is, how long a visit retries while MySQL is unreachable, and the
/// survey the member rows are laid out for (when the caller knows it).
package struct StoreConfiguration: Sendable {
    package var mysql: MariaDBConnection.Configuration
    /// The retry budget of ``StoreSession/withRetry(policy:onRetry:_:)``.
    package var retry: RetryPolicy
    /// The stored survey; ``StoreSession/members`` and
    /// ``StoreSession/publications`` need it.
    package var survey: Survey?

    package init(mysql: MariaDBConnection.Configuration, retry: RetryPolicy = .default, survey: Survey? = nil) {
        self.mysql = mysql
        self.retry = retry
        self.survey = survey
    }

    /// The same with `timeout` to connect, read and write (probes).
    package func withTimeouts(_ timeout: Duration) -> StoreConfiguration {
        var configuration = self
        configuration.mysql.connectTimeout = timeout
        configuration.mysql.readTimeout = timeout
        configuration.mysql.writeTimeout = timeout
        return configuration
    }
}

/// One thread's conversation with the member store: the only holder of a
/// ``MariaDBClient/MariaDBConnection`` above this module.
///
/// Callers never see the connection: they run a visit with
/// ``withRetry(policy:onRetry:_:)`` (reconnecting and running the visit
/// again when MySQL went away, within the retry budget) and use the store
/// views (``members``, ``generations``, ``publications``, ``evictions``,
/// ``shards``, ``runs``, ``snapshot(overlap:)``, ...) inside it.
///
/// The connection is opened on first use (or at once by
/// ``connect(_:waitingUpTo:onRetry:)``) and closed by ``close()`` or when
/// the session goes.
///
/// Threads: not thread-safe, and not `Sendable`: a session is made on the
/// thread that uses it (the executor running that thread makes it) and
/// never crosses to another. Two threads never share a connection.
package final class StoreSession {
    package let configuration: StoreConfiguration
    private var connection: MariaDBConnection?
    /// +1 on every (re)connect: user locks (`GET_LOCK`) belong to one
    /// server session, and a lock taken at another epoch is gone (the
    /// client never reconnects silently).
    package private(set) var epoch = 0
    /// False for a session over a connection the caller passed in (and
    /// still uses): its deinit leaves that connection open.
    private let ownsConnection: Bool

    /// A session that connects on first use.
    package init(_ configuration: StoreConfiguration) {
        self.configuration = configuration
        ownsConnection = true
    }

    /// A session over an open connection that the caller keeps (store
    /// tests, benchmarks): the session's end leaves it open.
    @_spi(Testing) public init(connection: MariaDBConnection, retry: RetryPolicy = .default, survey: Survey? = nil) {
        self.connection = connection
        ownsConnection = false
        configuration = StoreConfiguration(mysql: connection.configuration, retry: retry, survey: survey)
    }

    deinit { if ownsConnection { connection?.close() } }

    /// A session connected now, retrying with backoff while the server is
    /// unreachable, up to `timeout` (a program's start, a run's first
    /// visit). Any other failure (access denied, no such database) is
    /// thrown at once.
    package static func connect(
        _ configuration: StoreConfiguration, waitingUpTo timeout: Duration = .zero,
        onRetry: (RetryEvent) -> Void = { _ in }
    ) throws -> StoreSession {
        let session = StoreSession(configuration)
        session.connection = try openWaiting(configuration.mysql, timeout: timeout, onRetry: onRetry)
        return session
    }

    /// A session connected now to the server `url` names
    /// (`mysql://USER:PASSWORD@HOST:PORT/DATABASE`), with the default retry budget.
    package static func connect(url: String) throws -> StoreSession {
        try connect(StoreConfiguration(mysql: try MariaDBConnection.Configuration(url: url)))
    }

    /// The survey this session's member views use.
    /// - Precondition: the configuration names one (or ``loadSurvey()`` ran).
    package var survey: Survey {
        guard let survey = configuration.survey ?? loadedSurvey else {
            preconditionFailure("this store session has no survey: pass one in its StoreConfiguration")
        }
        return survey
    }
    private var loadedSurvey: Survey?

    /// Reads the stored survey and uses it for this session's member views.
    /// - Throws: ``MemberStoreError/Code/noSurvey`` before the first import.
    @discardableResult
    package func loadSurvey() throws -> Survey {
        guard let survey = try SurveyStore.stored(open()) else {
            throw MemberStoreError(.noSurvey, "no survey stored yet: import a survey and members first")
        }
        loadedSurvey = survey
        return survey
    }

    /// Runs one visit: `body` with the connection open, and when it fails
    /// because the connection was lost (or on a deadlock), waits, reconnects
    /// and runs it again, within `policy` (the configuration's when nil).
    /// See ``MariaDBClient/MariaDBConnection/withRetry(policy:onRetry:sleep:_:)``:
    /// `body` must be safe to run more than once.
    ///
    /// - Throws: ``MemberStoreError/Code/unavailable`` when MySQL cannot be
    ///   reached (at connect, or after the budget), or the first error that
    ///   is not retryable.
    @discardableResult
    package func withRetry<Result>(
        policy: RetryPolicy? = nil, onRetry: (RetryEvent) -> Void = { _ in }, _ body: (StoreSession) throws -> Result
    ) throws -> Result {
        let connection = try open()
        // The helper reconnects before running `body` again after a lost
        // connection: the next run is a new server session.
        var lost = false
        return try connection.withRetry(policy: policy ?? configuration.retry, onRetry: onRetry) { _ in
            if lost {
                lost = false
                epoch += 1
            }
            do {
                return try body(self)
            } catch let error as MariaDBError where error.isConnectionLost {
                lost = true
                throw error
            }
        }
    }

    /// Whether the server answers (`mysql_ping`, no SQL; reconnects once
    /// when the session has no connection).
    package func ping() throws {
        try open().ping()
    }

    /// Whether a connection is open (it may still be broken).
    package var isOpen: Bool { connection != nil }

    /// Disconnects; the next use connects again. User locks the session
    /// held go with it.
    package func close() {
        connection?.close()
        connection = nil
    }

    /// The connection, opened now if needed.
    func open() throws -> MariaDBConnection {
        if let connection { return connection }
        do {
            let made = try MariaDBConnection(configuration: configuration.mysql)
            connection = made
            epoch += 1
            return made
        } catch let error as MariaDBError {
            throw MemberStoreError(.unavailable, "MySQL unavailable: \(error)", underlying: error)
        }
    }

    /// The open connection, for the views.
    var link: MariaDBConnection {
        guard let connection else {
            preconditionFailure("a store view used outside a visit: use it inside StoreSession.withRetry")
        }
        return connection
    }

    static func openWaiting(
        _ configuration: MariaDBConnection.Configuration, timeout: Duration, onRetry: (RetryEvent) -> Void
    ) throws -> MariaDBConnection {
        let clock = ContinuousClock()
        let start = clock.now
        // A delay must end strictly before the deadline: hence the attosecond.
        var backoff = Backoff(BackoffPolicy(
            initialDelay: .milliseconds(200), maximumDelay: .seconds(5),
            budget: timeout - Duration(secondsComponent: 0, attosecondsComponent: 1),
            budgetRule: .refuseOvershoot))
        while true {
            do {
                return try MariaDBConnection(configuration: configuration)
            } catch let error as MariaDBError where error.isConnectionLost {
                guard let delay = backoff.next(elapsed: clock.now - start) else { throw error }
                onRetry(RetryEvent(attempt: backoff.retries, delay: delay, error: error))
                sleepThread(delay)
            }
        }
    }
}

// MARK: - Store views

extension StoreSession {
    /// Members, answers, blocks (needs the survey).
    package var members: MemberRepository { MemberRepository(connection: link, survey: survey) }
    /// Published records and publication locks (needs the survey).
    package var publications: PublishedStore { PublishedStore(connection: link, survey: survey) }
    package var generations: GenerationStore { GenerationStore(connection: link) }
    package var evictions: EvictionStore { EvictionStore(connection: link) }
    /// The shard list.
    package var shards: ShardCatalog { ShardCatalog(connection: link) }
    /// Backfill and evict runs.
    package var runs: BackfillRunStore { BackfillRunStore(connection: link) }

    package func snapshot(overlap: Duration = .seconds(10)) -> SnapshotLoader {
        SnapshotLoader(connection: link, overlap: overlap)
    }

    package func importer(options: Importer.Options = Importer.Options()) -> Importer {
        Importer(connection: link, options: options)
    }

    /// The stored survey, nil before the first import.
    package func storedSurvey() throws -> Survey? { try SurveyStore.stored(open()) }

    /// Stores `survey`; false when it equals the stored one.
    package func storeSurvey(_ survey: Survey) throws -> Bool { try SurveyStore.store(survey, open()) }

    /// The member store's clock now.
    package func serverTime() throws -> ServerTime { try open().serverTime() }

    /// See ``Migrator/migrate(_:migrations:lockTimeout:)``.
    @discardableResult
    package func migrate(migrations: [Migration] = Schema.migrations, lockTimeout: Duration = .seconds(60)) throws -> [Migration] {
        try Migrator.migrate(open(), migrations: migrations, lockTimeout: lockTimeout)
    }

    /// See ``Migrator/requireUpToDate(_:migrations:)``.
    package func requireUpToDate(migrations: [Migration] = Schema.migrations) throws {
        try Migrator.requireUpToDate(open(), migrations: migrations)
    }

    /// See ``Migrator/appliedVersions(_:)``.
    package func appliedVersions() throws -> [Int] { try Migrator.appliedVersions(open()) }
}

extension StoreSession {
    /// Whether `error` says the MySQL connection was lost (the same visit
    /// on a new connection may succeed), so callers above the store tell it
    /// apart without knowing the client's error type.
    package static func isConnectionLost(_ error: any Error) -> Bool {
        (error as? MariaDBError)?.isConnectionLost == true
    }
}
