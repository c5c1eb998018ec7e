import Foundation
import KindredCore
import KindredRuns
import KindredSupport
@testable import KindredTestKit
@_spi(Testing) import MemberStore
import Scoring
import Testing
import TestSupport

/// The pure parts of backfill and evict: durations, windows, the rate
/// schedule, checkpoint progress, byte sizes. No server.
@Suite("Backfill logic (no server)", .offCooperativePool)
struct BackfillLogicTests {
    @Test("durations: a whole number and a unit, or a sum of them")
    func durations() throws {
        #expect(try RunText.seconds(in: "90d") == 90 * 86_400)
        #expect(try RunText.seconds(in: "12h") == 12 * 3_600)
        #expect(try RunText.seconds(in: "2w") == 14 * 86_400)
        #expect(try RunText.seconds(in: "30m") == 1_800)
        #expect(try RunText.seconds(in: "45s") == 45)
        #expect(try RunText.seconds(in: "1w2d") == 9 * 86_400)
        #expect(try RunText.seconds(in: "1d12h") == 36 * 3_600)
        #expect(try RunText.seconds(in: "0s") == 0)
        for bad in ["", "d", "90", "-1d", "9x", "1.5d", "d90", "90 d", "1000000000000000d", "40000d"] {
            #expect(throws: SelectionError.self, "\(bad)") { try RunText.seconds(in: bad) }
        }
        #expect(RunText.duration(90 * 86_400) == "90d")
        #expect(RunText.duration(14 * 86_400) == "2w")
        #expect(RunText.duration(3_601) == "3601s")
    }

    @Test("instants: a date is midnight UTC; RFC 3339 UTC timestamps; nothing else")
    func instants() throws {
        #expect(try RunText.instant("2026-11-01") == 1_793_491_200)
        #expect(try RunText.instant("2026-11-01T00:00:00Z") == 1_793_491_200)
        #expect(try RunText.instant("2026-11-01T12:30:05Z") == 1_793_491_200 + 45_005)
        for bad in ["2026-13-01", "2026-11-01T00:00:00+02:00", "yesterday", "1793491200", "2026-02-30"] {
            #expect(throws: SelectionError.self, "\(bad)") { try RunText.instant(bad) }
        }
    }

    @Test("windows: active-within includes its boundary instant, dormant-for excludes it; together they split everyone")
    func windows() throws {
        let now: Int64 = 1_793_491_200
        let d: Int64 = 90 * 86_400
        let active = try RunSelection(activeWithin: d).members(now: now)
        let dormant = try RunSelection(dormantFor: d).members(now: now)
        #expect(active == .activity(from: now - d, before: nil))
        #expect(dormant == .activity(from: nil, before: now - d))
        for lastActive in [nil, now - d - 1, now - d, now - d + 1, now, now + 5] as [Int64?] {
            #expect(active.admits(lastActive: lastActive) != dormant.admits(lastActive: lastActive), "\(String(describing: lastActive))")
        }
        #expect(active.admits(lastActive: now - d) && !active.admits(lastActive: now - d - 1))
        #expect(dormant.admits(lastActive: now - d - 1) && !dormant.admits(lastActive: now - d) && dormant.admits(lastActive: nil))
        #expect(!active.admits(lastActive: nil))

        let since = try RunSelection(since: now - 10).members(now: now)
        #expect(since.admits(lastActive: now - 10) && !since.admits(lastActive: now - 11))
        // Both bounds: [now - 180d, now - 90d), never-active members out.
        let between = try RunSelection(activeWithin: 2 * d, dormantFor: d).members(now: now)
        #expect(between == .activity(from: now - 2 * d, before: now - d))
        #expect(between.admits(lastActive: now - 2 * d) && between.admits(lastActive: now - d - 1))
        #expect(!between.admits(lastActive: now - d) && !between.admits(lastActive: now - 2 * d - 1) && !between.admits(lastActive: nil))
        #expect(throws: SelectionError.self) { try RunSelection(activeWithin: d, dormantFor: d).members(now: now) }
        #expect(try RunSelection(all: true).members(now: now) == .all)
        #expect(try RunSelection(ids: [3, 1, 3]).members(now: now) == .ids([1, 3]))
    }

    @Test("selections: one window (or ids, or all); the key ignores spelling and includes an explicit now")
    func selectionRules() throws {
        try RunSelection(activeWithin: 1).validate()
        try RunSelection(since: 1, dormantFor: 1).validate()
        for bad in [
            RunSelection(), RunSelection(activeWithin: 1, since: 1), RunSelection(activeWithin: 1, ids: [1]),
            RunSelection(ids: [1], all: true), RunSelection(dormantFor: 1, all: true), RunSelection(ids: []),
            RunSelection(ids: [0]),
        ] {
            #expect(throws: SelectionError.self, "\(bad)") { try bad.validate() }
        }
        #expect(RunSelection(activeWithin: try RunText.seconds(in: "90d")).key == RunSelection(activeWithin: try RunText.seconds(in: "2160h")).key)
        #expect(RunSelection(activeWithin: 60).key != RunSelection(dormantFor: 60).key)
        #expect(RunSelection(activeWithin: 60).key != RunSelection(activeWithin: 60, explicitNow: 5).key)
        #expect(RunSelection(ids: [1, 2, 3]).key == RunSelection(ids: [3, 2, 1, 1]).key)
        #expect(RunSelection(ids: [1, 2, 3]).key != RunSelection(ids: [1, 2, 4]).key)
        let text = RunSelection(activeWithin: 90 * 86_400).describe(now: 1_793_491_200)
        #expect(text.contains("at or after 2026-08-03T00:00:00Z"), "\(text)")
    }

    @Test("rate schedule: evenly spaced starts, a bounded burst after idling, never more than rate x T + burst")
    func rateSchedule() {
        let t0 = ContinuousClock.now
        var schedule = RateSchedule(rate: 10)
        var starts: [ContinuousClock.Instant] = []
        for _ in 0..<100 { starts.append(schedule.reserve(at: t0)) }
        #expect(starts.first == t0)
        #expect(starts.last == t0 + .milliseconds(9_900))
        #expect(zip(starts, starts.dropFirst()).allSatisfy { $1 - $0 == .milliseconds(100) })
        // After a long idle spell: no catching up beyond the burst.
        let later = t0 + .seconds(60)
        #expect(schedule.reserve(at: later) == later)
        #expect(schedule.reserve(at: later) == later + .milliseconds(100))

        var bursty = RateSchedule(rate: 100, burst: 5)
        let burst = (0..<8).map { _ in bursty.reserve(at: t0) }
        #expect(burst.prefix(5).allSatisfy { $0 == t0 })
        #expect(burst[5] == t0 + .milliseconds(10) && burst[7] == t0 + .milliseconds(30))
        // Batches book their whole size.
        var batches = RateSchedule(rate: 1000)
        #expect(batches.reserve(500, at: t0) == t0)
        #expect(batches.reserve(500, at: t0) == t0 + .milliseconds(500))
        // Over any window, starts <= rate x T + burst.
        var check = RateSchedule(rate: 50, burst: 5)
        var now = t0
        var all: [ContinuousClock.Instant] = []
        for step in 0..<400 {
            now = now + .milliseconds(step % 7 == 0 ? 90 : 3)
            all.append(check.reserve(at: now))
        }
        for (index, start) in all.enumerated() {
            let window = all[index...].prefix { $0 - start < .seconds(1) }.count
            #expect(window <= 55, "\(window) starts within a second")
        }
    }

    @Test("progress: out-of-order finishes move the checkpoint only over a finished prefix; skipped members count as the frontier passes")
    func progress() {
        var progress = RunProgress(
            members: [(10, true), (11, false), (12, true), (13, true), (14, false), (15, false), (16, true)], checkpoint: 5,
            committed: RunProgress.Counts(done: 4))
        #expect(progress.checkpoint == 5 && progress.workCount == 4 && progress.count == 7)
        #expect(progress.next() == 10)
        #expect(progress.next() == 12)
        #expect(progress.next() == 13)
        progress.finish(13, .done)
        progress.finish(12, .failed("shard 2 unavailable"))
        #expect(progress.checkpoint == 5, "10 is still in flight")
        progress.finish(10, .done)
        #expect(progress.checkpoint == 15, "10-13 finished, 14 and 15 need no work")
        #expect(progress.committed == RunProgress.Counts(done: 6, skipped: 3, failed: 1))
        #expect(progress.takeCommittedFailures() == [BackfillFailure(member: 12, reason: "shard 2 unavailable")])
        #expect(progress.takeCommittedFailures().isEmpty)
        #expect(progress.next() == 16)
        progress.giveBack(16)
        #expect(!progress.isComplete && progress.checkpoint == 15)
        #expect(progress.next() == 16, "a member given back is handed out again")
        progress.finish(16, .gone)
        #expect(progress.isComplete && progress.checkpoint == 16 && progress.next() == nil)
        #expect(progress.committed == RunProgress.Counts(done: 6, skipped: 3, gone: 1, failed: 1))
        #expect(progress.finished == progress.committed)

        let empty = RunProgress(members: [], checkpoint: 42)
        #expect(empty.isComplete && empty.checkpoint == 42)
    }

    @Test("run status: rate and ETA")
    func status() {
        let status = RunStatus(finished: 50, total: 150, failed: 1, skipped: 3, rate: 25, elapsed: .seconds(2))
        #expect(status.fraction == 1.0 / 3.0)
        #expect(status.remaining == .seconds(4))
        #expect(RunStatus(finished: 0, total: 10, failed: 0, skipped: 0, rate: 0, elapsed: .zero).remaining == nil)
    }

    @Test("byte sizes: decimal and binary units")
    func bytes() {
        #expect(Bytes.parse("512MB") == 512_000_000)
        #expect(Bytes.parse("512MiB") == 512 * 1_048_576)
        #expect(Bytes.parse("2GiB") == 2 * 1_073_741_824)
        #expect(Bytes.parse("1.5GB") == 1_500_000_000)
        #expect(Bytes.parse("1048576") == 1_048_576)
        #expect(Bytes.parse("64 kb") == 64_000)
        for bad in ["", "MB", "12XB", "-5MB", "1e9"] { #expect(Bytes.parse(bad) == nil, "\(bad)") }
        #expect(Bytes.text(12_300_000) == "12.3 MB")
        #expect(Bytes.text(999) == "999 B")
    }
}
