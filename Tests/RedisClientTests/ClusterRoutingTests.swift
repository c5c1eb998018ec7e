@testable import RedisClient
import Testing
import TestSupport

/// The cluster layer's pure parts: slots, the slot map, redirections and the
/// routing state machine, with made-up replies and times (no server).
@Suite("Cluster routing (no server)", .offCooperativePool)
struct ClusterRoutingTests {
    let a = ClusterNode(host: "10.0.0.1", port: 7000)
    let b = ClusterNode(host: "10.0.0.2", port: 7001)

    @Test("hash slots: CRC16/XMODEM, modulo 16,384, of the hash tag when there is a non-empty one")
    func slots() {
        #expect(HashSlot.crc16(Array("123456789".utf8)) == 0x31C3)  // the XMODEM check value
        #expect(HashSlot(key: "foo").value == 12182)
        #expect(HashSlot(key: "bar").value == 5061)
        #expect(HashSlot(key: "{user1000}.following") == HashSlot(key: "{user1000}.followers"))
        #expect(HashSlot(key: "{user1000}.following") == HashSlot(key: "user1000"))
        #expect(HashSlot(key: "foo{}{bar}") == HashSlot(key: "foo{}{bar}".utf8))  // empty tag: the whole key
        #expect(HashSlot(key: "foo{}{bar}") != HashSlot(key: "bar"))
        #expect(HashSlot(key: "foo{{bar}}zap") == HashSlot(key: "{bar"))  // from the first { to the first } after it
        #expect(HashSlot(key: "foo{bar}{zap}") == HashSlot(key: "bar"))
        #expect(HashSlot(key: "scores:{42}:meta") == HashSlot(key: "scores:{42}:7"))
        #expect(HashSlot(key: "") .value == 0)
        #expect(HashSlot(16_384) == nil && HashSlot(-1) == nil && HashSlot(16_383) != nil)
    }

    @Test("CLUSTER SLOTS: ranges, masters, replicas; an empty host is the node that answered; malformed replies are errors")
    func slotMap() throws {
        func node(_ host: String, _ port: Int) -> RedisValue { .array([.bulkString(Array(host.utf8)), .integer(port), .bulkString(Array("id".utf8))]) }
        let reply = RedisValue.array([
            .array([.integer(0), .integer(5460), node("10.0.0.1", 7000), node("10.0.0.4", 7003)]),
            .array([.integer(5461), .integer(10922), node("", 7001)]),
        ])
        let map = try ClusterSlotMap(clusterSlots: reply, answeringHost: "10.0.0.2")
        #expect(map.master(for: HashSlot(0)!) == a)
        #expect(map.master(for: HashSlot(5460)!) == a)
        #expect(map.master(for: HashSlot(5461)!) == b)
        #expect(map.master(for: HashSlot(10923)!) == nil)
        #expect(map.coveredSlots == 10923)
        #expect(map.masterNodes == [a, b])
        #expect(map.replicas[a] == [ClusterNode(host: "10.0.0.4", port: 7003)])
        #expect(map.nodes.count == 3)
        for bad: RedisValue in [
            .integer(1), .array([.array([.integer(5), .integer(4), node("h", 1)])]),
            .array([.array([.integer(0), .integer(16_384), node("h", 1)])]),
            .array([.array([.integer(0), .integer(1), .array([.bulkString(Array("h".utf8))])])]),
            .array([.array([.integer(0), .integer(1), node("h", 0)])]),
        ] {
            #expect(throws: ClusterError.self) { try ClusterSlotMap(clusterSlots: bad, answeringHost: "x") }
        }
    }

    @Test("MOVED and ASK: slot and node, IPv6 hosts, an empty host; anything else is not a redirection")
    func redirects() {
        #expect(ClusterRedirect(errorMessage: "MOVED 3999 127.0.0.1:6381", answeringHost: "h") == .moved(HashSlot(3999)!, ClusterNode(host: "127.0.0.1", port: 6381)))
        #expect(ClusterRedirect(errorMessage: "ASK 3999 127.0.0.1:6381", answeringHost: "h") == .ask(HashSlot(3999)!, ClusterNode(host: "127.0.0.1", port: 6381)))
        #expect(ClusterRedirect(errorMessage: "MOVED 1 ::1:7000", answeringHost: "h") == .moved(HashSlot(1)!, ClusterNode(host: "::1", port: 7000)))
        #expect(ClusterRedirect(errorMessage: "MOVED 1 :7000", answeringHost: "10.1.1.1") == .moved(HashSlot(1)!, ClusterNode(host: "10.1.1.1", port: 7000)))
        for other in ["ERR unknown", "MOVED 16384 h:1", "MOVED x h:1", "MOVED 1 h", "MOVED 1 h:0", "ASK 1", "TRYAGAIN Multiple keys request during rehashing of slot"] {
            #expect(ClusterRedirect(errorMessage: other, answeringHost: "h") == nil, "\(other)")
        }
    }

    @Test("a plain reply or a non-cluster error reply is the command's")
    func done() {
        var routing = ClusterRouting()
        var map = ClusterSlotMap()
        #expect(routing.afterReply(.status("OK"), from: a, map: &map, now: .zero) == .done)
        #expect(routing.afterReply(.error("WRONGTYPE Operation against a key"), from: a, map: &map, now: .zero) == .done)
    }

    @Test("MOVED: the map learns the slot and the command goes there at once; ASK: once, with ASKING, map unchanged")
    func movedAndAsk() {
        var routing = ClusterRouting()
        var map = ClusterSlotMap()
        map.assign(HashSlot(7)!, to: a)
        #expect(routing.afterReply(.error("MOVED 7 10.0.0.2:7001"), from: a, map: &map, now: .zero)
            == .retry(node: b, asking: false, refreshMap: false, after: .zero))
        #expect(map.master(for: HashSlot(7)!) == b)
        #expect(routing.afterReply(.error("ASK 8 10.0.0.1:7000"), from: b, map: &map, now: .zero)
            == .retry(node: a, asking: true, refreshMap: false, after: .zero))
        #expect(map.master(for: HashSlot(8)!) == nil)
    }

    @Test("redirections that never end fail after the maximum")
    func tooManyRedirects() {
        var routing = ClusterRouting(policy: .init(maximumRedirects: 3))
        var map = ClusterSlotMap()
        for _ in 0..<3 {
            guard case .retry = routing.afterReply(.error("MOVED 7 10.0.0.2:7001"), from: a, map: &map, now: .zero) else {
                Issue.record("stopped early")
                return
            }
        }
        guard case .fail(let reason) = routing.afterReply(.error("MOVED 7 10.0.0.1:7000"), from: b, map: &map, now: .zero) else {
            Issue.record("did not stop")
            return
        }
        #expect(reason.contains("more than 3 redirections"))
    }

    @Test("the default policy: 50 ms doubling to 1 s, refused once a delay would end past 10 s")
    func defaultDelays() {
        var routing = ClusterRouting()
        let broken = RedisError(code: .connectionBroken, message: "Connection reset", context: a.endpoint)
        var now = Duration.zero
        var delays: [Duration] = []
        while case .retry(_, _, _, let delay) = routing.afterFailure(broken, now: now) {
            delays.append(delay)
            now += delay
        }
        #expect(delays == [50, 100, 200, 400, 800].map { Duration.milliseconds($0) } + Array(repeating: .seconds(1), count: 8))
    }

    @Test("TRYAGAIN: the same node after doubling delays; CLUSTERDOWN and failures: a fresh map; all within the budget")
    func delaysAndBudget() {
        let policy = ClusterRouting.Policy(retryBudget: .seconds(2), initialDelay: .milliseconds(100), maximumDelay: .milliseconds(400))
        var routing = ClusterRouting(policy: policy)
        var map = ClusterSlotMap()
        #expect(routing.afterReply(.error("TRYAGAIN Multiple keys request during rehashing of slot"), from: a, map: &map, now: .zero)
            == .retry(node: a, asking: false, refreshMap: false, after: .milliseconds(100)))
        #expect(routing.afterReply(.error("CLUSTERDOWN The cluster is down"), from: a, map: &map, now: .milliseconds(100))
            == .retry(node: nil, asking: false, refreshMap: true, after: .milliseconds(200)))
        let broken = RedisError(code: .connectionBroken, message: "Connection reset", context: a.endpoint)
        #expect(routing.afterFailure(broken, now: .milliseconds(300)) == .retry(node: nil, asking: false, refreshMap: true, after: .milliseconds(400)))
        #expect(routing.afterFailure(broken, now: .milliseconds(700)) == .retry(node: nil, asking: false, refreshMap: true, after: .milliseconds(400)))
        #expect(routing.afterFailure(broken, now: .milliseconds(1100)) == .retry(node: nil, asking: false, refreshMap: true, after: .milliseconds(400)))
        // 1.7 s elapsed + 0.4 s would pass the 2 s budget.
        guard case .fail(let reason) = routing.afterFailure(broken, now: .milliseconds(1700)) else {
            Issue.record("did not give up at the budget")
            return
        }
        #expect(reason.contains("Connection reset"))
    }

    @Test("an operation's cluster error: MOVED again at once on a fresh map (up to the maximum), ASK/TRYAGAIN/CLUSTERDOWN after delays within the budget")
    func operationErrors() {
        var routing = ClusterRouting(policy: .init(maximumRedirects: 2, retryBudget: .seconds(1), initialDelay: .milliseconds(100), maximumDelay: .seconds(1)))
        #expect(routing.afterClusterError(kind: "MOVED", message: "MOVED 1 h:1", now: .zero) == .retry(node: nil, asking: false, refreshMap: true, after: .zero))
        #expect(routing.afterClusterError(kind: "ASK", message: "ASK 1 h:1", now: .zero) == .retry(node: nil, asking: false, refreshMap: true, after: .milliseconds(100)))
        #expect(routing.afterClusterError(kind: "WRONGTYPE", message: "WRONGTYPE", now: .zero) == .done)
        #expect(routing.afterClusterError(kind: "MOVED", message: "MOVED 1 h:1", now: .zero) == .retry(node: nil, asking: false, refreshMap: true, after: .zero))
        guard case .fail = routing.afterClusterError(kind: "MOVED", message: "MOVED 1 h:1", now: .zero) else {
            Issue.record("a third MOVED passed the maximum of 2")
            return
        }
        guard case .fail = routing.afterClusterError(kind: "TRYAGAIN", message: "TRYAGAIN", now: .milliseconds(950)) else {
            Issue.record("a delay past the budget was granted")
            return
        }
    }
}
