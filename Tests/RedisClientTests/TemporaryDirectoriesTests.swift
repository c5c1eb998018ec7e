import Foundation
import Testing
import TestSupport

/// The harness removes its temporary directories: at exit its own, at start
/// those of test processes that are gone (a killed run's servers' data).
@Suite("The test harness's temporary directories")
struct TemporaryDirectoriesTests {
    @Test("a directory's owner is read from makeTemporaryDirectory's names only")
    func owners() throws {
        // The names the harness makes parse back to this process.
        let made = try makeTemporaryDirectory(prefix: "kindred-owner-check")
        #expect(TemporaryDirectories.owner(ofDirectoryNamed: made.lastPathComponent) == getpid())
        #expect(TemporaryDirectories.owner(ofDirectoryNamed: "kindred-redis-17284-BA358131") == 17284)
        #expect(TemporaryDirectories.owner(ofDirectoryNamed: "kindred-mariadb-template-17284-0E136435") == 17284)
        #expect(TemporaryDirectories.owner(ofDirectoryNamed: "kindred-bench-backfill-mariadb") == nil)
        #expect(TemporaryDirectories.owner(ofDirectoryNamed: "kindred-redis-17284-BA35813") == nil)
        #expect(TemporaryDirectories.owner(ofDirectoryNamed: "kindred-redis-17284-BA35813G") == nil)
        #expect(TemporaryDirectories.owner(ofDirectoryNamed: "kindred-redis--BA358131") == nil)
        #expect(TemporaryDirectories.owner(ofDirectoryNamed: "kindred-redis-0-BA358131") == nil)
        #expect(TemporaryDirectories.owner(ofDirectoryNamed: "kindred-redis-99999999999-BA358131") == nil)
        #expect(TemporaryDirectories.owner(ofDirectoryNamed: "other-redis-17284-BA358131") == nil)
        #expect(TemporaryDirectories.owner(ofDirectoryNamed: "kindred-١٢-BA358131") == nil)
    }

    @Test("a dead test process's directories are removed; a live one's, ours and other names are kept")
    func orphans() throws {
        let base = try makeTemporaryDirectory(prefix: "kindred-orphans")
        // A process that has exited and been reaped: its pid names no process.
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let dead = finished.processIdentifier
        // A process that is alive for the whole check.
        let running = Process()
        running.executableURL = URL(fileURLWithPath: "/bin/sleep")
        running.arguments = ["60"]
        try running.run()
        defer {
            running.terminate()
            running.waitUntilExit()
        }
        let alive = running.processIdentifier
        let names = [
            "kindred-redis-\(dead)-0A1B2C3D",  // dead: removed
            "kindred-fixture-\(dead)-DEADBEEF",  // dead: removed
            "kindred-redis-\(getpid())-0A1B2C3D",  // ours: kept
            "kindred-redis-\(alive)-0A1B2C3D",  // alive: kept
            "kindred-bench-backfill-mariadb",  // not the harness's: kept
        ]
        for name in names {
            try FileManager.default.createDirectory(
                at: base.appendingPathComponent(name).appendingPathComponent("data"), withIntermediateDirectories: true)
        }
        let removed = TemporaryDirectories.removeOrphans(in: base)
        #expect(Set(removed) == Set(names.prefix(2)))
        let left = try FileManager.default.contentsOfDirectory(atPath: base.path)
        #expect(Set(left) == Set(names.suffix(3)))
    }
}
