#if canImport(Glibc)
import Glibc
#endif

/// A readers-writer lock over `pthread_rwlock_t`: any number of readers or
/// one writer. Used to let scoring scans run in parallel while the snapshot
/// refresher applies changes between them.
///
/// The one lock besides `Synchronization.Mutex`, which has no shared mode.
package final class ReadWriteLock: @unchecked Sendable {
    // Why this is safe: it holds no state but the rwlock, which provides the
    // exclusion; the pointer is allocated once and never reassigned.
    private let rwlock: UnsafeMutablePointer<pthread_rwlock_t>

    package init() {
        rwlock = .allocate(capacity: 1)
        pthread_rwlock_init(rwlock, nil)
    }

    deinit {
        pthread_rwlock_destroy(rwlock)
        rwlock.deallocate()
    }

    package func withReadLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_rwlock_rdlock(rwlock)
        defer { pthread_rwlock_unlock(rwlock) }
        return try body()
    }

    package func withWriteLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_rwlock_wrlock(rwlock)
        defer { pthread_rwlock_unlock(rwlock) }
        return try body()
    }
}
