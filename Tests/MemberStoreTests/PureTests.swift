import KindredSupport
@_spi(Testing) import MemberStore
import Scoring
import Testing
import TestSupport

@Suite("Packed answers and answers versions (no server)", .offCooperativePool)
struct PackedAnswersTests {
    @Test("answers survive packing, two bytes per question in the documented layout")
    func roundTrip() throws {
        let member = sampleMember(7)
        let packed = PackedAnswers.encode(member.answers, questions: smallSurvey.questionCount)
        #expect(packed.count == 2 * smallSurvey.questionCount)
        let first = member.answers[0]
        #expect(packed[2 * first.question] == 0x80 | first.importance.rawValue << 3 | UInt8(first.option))
        #expect(packed[2 * first.question + 1] == first.accepted.rawValue)
        let skipped = (0..<smallSurvey.questionCount).first { q in !member.answers.contains { $0.question == q } }!
        #expect(packed[2 * skipped] == 0 && packed[2 * skipped + 1] == 0)
        #expect(try PackedAnswers.decode(packed, questions: smallSurvey.questionCount) == normalized(member).answers)
    }

    @Test("malformed packed answers are errors naming the problem, not crashes")
    func malformed() throws {
        let good = PackedAnswers.encode(sampleMember(7).answers, questions: smallSurvey.questionCount)
        #expect(throws: MemberValidationError.self) { try PackedAnswers.decode(Array(good.dropLast()), questions: 12) }
        var noMarker = good
        noMarker[2] = 0x01
        #expect(throws: MemberValidationError.self) { try PackedAnswers.decode(noMarker, questions: 12) }
        var badImportance = good
        badImportance[2] = 0x80 | 5 << 3
        #expect(throws: MemberValidationError.self) { try PackedAnswers.decode(badImportance, questions: 12) }
        var skippedWithMask = [UInt8](repeating: 0, count: 24)
        skippedWithMask[1] = 1
        #expect(throws: MemberValidationError.self) { try PackedAnswers.decode(skippedWithMask, questions: 12) }
    }

    @Test("the answers version is a fixed function of the scoring fields; last_active and block order do not count")
    func version() {
        let member = sampleMember(9, blocked: [5, 3])
        let version = AnswersVersion.of(member, survey: smallSurvey)
        // Pinned: the digest must be the same on every run and platform.
        #expect(version == AnswersVersion.of(member, survey: smallSurvey))
        var reordered = member
        reordered.blocked = [3, 5, 5]
        reordered.lastActive = nil
        reordered.answers.reverse()
        #expect(AnswersVersion.of(reordered, survey: smallSurvey) == version)
        var changes: [Member] = []
        for change in 0..<7 {
            var other = member
            switch change {
            case 0: other.gender = member.gender == .man ? .woman : .man
            case 1: other.seeking = GenderSet(rawValue: member.seeking.rawValue ^ 1 == 0 ? 3 : member.seeking.rawValue ^ 1)
            case 2: other.age += 1
            case 3: other.ageMin += 1
            case 4: other.ageMax += 1
            case 5: other.answers[0].importance = other.answers[0].importance == .very ? .somewhat : .very
            default: other.blocked = [3]
            }
            changes.append(other)
        }
        let versions = changes.map { AnswersVersion.of($0, survey: smallSurvey) }
        #expect(!versions.contains(version))
        #expect(Set(versions).count == versions.count)
    }

    @Test("FNV-1a 64 pinned value: an empty member of a 1-question survey")
    func pinned() {
        // format 1, gender 0, seeking 1, ages 18 18 18, 2 answer bytes 0 0, no blocks.
        let value = AnswersVersion.of(
            gender: .man, seeking: .man, age: 18, ageMin: 18, ageMax: 18, packedAnswers: [0, 0], sortedBlocked: [])
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte: UInt8 in [1, 0, 1, 18, 18, 18, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0] {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        #expect(value == hash)
    }
}

@Suite("Backoff (no server)", .offCooperativePool)
struct BackoffTests {
    @Test("delays double up to the maximum and stop at the time budget")
    func schedule() {
        var backoff = Backoff(RetryPolicy(
            initialDelay: .milliseconds(100), maximumDelay: .milliseconds(500), multiplier: 2, giveUpAfter: .seconds(2)).backoff)
        #expect(backoff.next(elapsed: .zero) == .milliseconds(100))
        #expect(backoff.next(elapsed: .milliseconds(100)) == .milliseconds(200))
        #expect(backoff.next(elapsed: .milliseconds(300)) == .milliseconds(400))
        #expect(backoff.next(elapsed: .milliseconds(700)) == .milliseconds(500))
        #expect(backoff.next(elapsed: .milliseconds(1700)) == .milliseconds(300), "never past the budget")
        #expect(backoff.next(elapsed: .seconds(2)) == nil)
        #expect(backoff.retries == 5)
        var never = Backoff(RetryPolicy.never.backoff)
        #expect(never.next(elapsed: .zero) == nil)
    }

    @Test("the default policy: 0.1 s doubling to 5 s, the last delay clipped at the minute")
    func defaultPolicy() {
        var backoff = Backoff(RetryPolicy.default.backoff)
        let delays = (0..<9).map { _ in backoff.next(elapsed: .seconds(1)) }
        #expect(delays == [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000].map { Duration.milliseconds($0) })
        #expect(backoff.next(elapsed: .seconds(58)) == .seconds(2))
        #expect(backoff.next(elapsed: .seconds(60)) == nil)
    }
}

@Suite("Shard addresses and the picker (no server)", .offCooperativePool)
struct ShardPureTests {
    @Test("valid addresses parse and normalize", arguments: [
        ("redis://127.0.0.1:7000", "redis://127.0.0.1:7000"),
        ("redis://Cache-1.Example.org:6379", "redis://cache-1.example.org:6379"),
        ("REDIS://localhost:1", "redis://localhost:1"),
        ("redis://10.0.0.255:65535", "redis://10.0.0.255:65535"),
        ("redis://host:7000/0", "redis://host:7000"),
        ("redis://:pw@Host:7000/3", "redis://:***@host:7000/3"),
        ("redis://kindred:p%40w@host:7000", "redis://kindred:***@host:7000"),
    ])
    func valid(_ text: String, _ expected: String) throws {
        #expect(try ShardAddress(text).description == expected)
    }

    @Test("invalid addresses are refused", arguments: [
        "127.0.0.1:7000", "redis://:7000", "redis://host", "redis://host:0", "redis://host:65536", "redis://host:70a",
        "redis://256.1.1.1:7000", "redis://1.2.3:7000", "redis://01.2.3.4:7000", "redis://-bad.example:7000",
        "redis://bad_name:7000", "redis://user@host:7000", "redis://host:7000/x", "redis://a..b:7000",
        "redis://:pw@host", "redis://:pw@host:7000?x=1",
        "redis://[::1]:7000", "http://host:7000",
    ])
    func invalid(_ text: String) {
        let error = #expect(throws: MemberStoreError.self) { try ShardAddress(text) }
        #expect(error?.code == .invalidShardAddress)
        #expect(error?.message.contains("pw") == false, "the password is never repeated")
    }

    @Test("the stored form keeps the password and parses back; identity ignores credentials")
    func stored() throws {
        let address = try ShardAddress("redis://kindred:p%40w@Host:7000/2")
        #expect(address.stored == "redis://kindred:p%40w@host:7000/2")
        #expect(try ShardAddress(address.stored) == address)
        #expect(address.identity == (try ShardAddress("redis://host:7000/2")).identity)
        #expect(address.identity != (try ShardAddress("redis://host:7000/3")).identity)
    }

    @Test("the picker takes the lowest assigned/weight, ties to the lowest id")
    func picker() {
        #expect(ShardPicker.pick([]) == nil)
        #expect(ShardPicker.pick([ShardLoad(id: 2, weight: 1, assigned: 0), ShardLoad(id: 1, weight: 1, assigned: 0)]) == 1)
        #expect(ShardPicker.pick([ShardLoad(id: 1, weight: 1, assigned: 10), ShardLoad(id: 2, weight: 3, assigned: 29)]) == 2)
        #expect(ShardPicker.pick([ShardLoad(id: 1, weight: 1, assigned: 10), ShardLoad(id: 2, weight: 3, assigned: 30)]) == 1)
        var loads = [ShardLoad(id: 1, weight: 1, assigned: 0), ShardLoad(id: 2, weight: 3, assigned: 0)]
        for _ in 0..<4000 {
            let id = ShardPicker.pick(loads)!
            loads[Int(id) - 1].assigned += 1
        }
        #expect(loads.map(\.assigned) == [1000, 3000])
    }
}

@Suite("The member store's clock (no server)", .offCooperativePool)
struct ServerTimeTests {
    @Test("MySQL's DATETIME(6) text round-trips through microseconds since the epoch")
    func roundTrip() throws {
        let epoch = try #require(ServerTime("1970-01-01 00:00:00.000000"))
        #expect(epoch.microseconds == 0)
        let time = try #require(ServerTime("2026-11-30 12:34:56.789012"))
        #expect(time.microseconds == 1_796_042_096_789_012)
        #expect(time.description == "2026-11-30 12:34:56.789012")
        #expect(ServerTime("2026-11-30 12:34:56")?.microseconds == 1_796_042_096_000_000, "no fraction")
        #expect(ServerTime("2026-11-30 12:34:56.5")?.description == "2026-11-30 12:34:56.500000", "a short fraction is tenths")
        #expect(ServerTime("2024-02-29 23:59:59.999999").map { ServerTime(microseconds: $0.microseconds + 1).description } == "2024-03-01 00:00:00.000000")
        #expect((time - .seconds(10)).description == "2026-11-30 12:34:46.789012")
        #expect(ServerTime("1969-12-31 23:59:59.000000")?.description == "1969-12-31 23:59:59.000000")
        for bad in ["", "2026-11-30", "2026-13-01 00:00:00", "2026-11-30T12:34:56", "2026-11-30 25:00:00", "2026-11-30 12:34:56.", "2026-11-30 12:34:56.1234567", "x026-11-30 12:34:56"] {
            #expect(ServerTime(bad) == nil, "\(bad)")
        }
    }
}
