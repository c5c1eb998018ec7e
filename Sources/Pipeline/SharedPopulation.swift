import KindredSupport
import Scoring

/// The population snapshot shared by every thread of a process: scans run
/// in parallel under the read lock, the refresher applies changes under the
/// write lock between them. `Population` itself is not thread-safe; this
/// type is the only way other threads reach it.
public final class SharedPopulation: @unchecked Sendable {
    // @unchecked Sendable: `population` and `refreshedAt` are only touched
    // inside `lock`'s read or write sections.
    private let lock = ReadWriteLock()
    private let population: Population
    private var refreshedAt: ContinuousClock.Instant
    private var writes = 0

    public init(_ population: Population) {
        self.population = population
        refreshedAt = .now
    }

    public var survey: Survey { population.survey }

    /// Runs `body` with read access; any number at once.
    public func read<T, E: Error>(_ body: (Population) throws(E) -> T) throws(E) -> T {
        try lock.withReadLock { () throws(E) -> T in try body(population) }
    }

    /// Runs `body` with exclusive access, and records the refresh time.
    public func write<T, E: Error>(_ body: (Population) throws(E) -> T) throws(E) -> T {
        try lock.withWriteLock { () throws(E) -> T in
            let result = try body(population)
            refreshedAt = .now
            writes &+= 1
            return result
        }
    }

    /// Records a refresh that found nothing to change: the snapshot's age
    /// restarts, its version (and what callers cached under it) stays.
    public func markRefreshed() {
        lock.withWriteLock { refreshedAt = .now }
    }

    /// Runs `body` with read access and the number of writes so far: a
    /// value derived from the population under the same number is still
    /// valid (callers cache per-member values keyed by it).
    public func read<T, E: Error>(withVersion body: (Population, Int) throws(E) -> T) throws(E) -> T {
        try lock.withReadLock { () throws(E) -> T in try body(population, writes) }
    }

    /// The number of writes so far.
    public var version: Int { lock.withReadLock { writes } }

    /// How long since the last write (the snapshot's age, for metrics).
    public var age: Duration { lock.withReadLock { ContinuousClock.now - refreshedAt } }
}
