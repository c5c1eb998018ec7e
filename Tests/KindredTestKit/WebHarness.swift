import Foundation
import Hummingbird
import KindredCore
import Logging
import MariaDBClient
@_spi(Testing) import MemberStore
import NIOCore
import NIOEmbedded
import Prometheus
import RedisClient
import ScoreStore
import Scoring
import ServiceLifecycle
import TestSupport
import WebAPI
import WorkQueue

/// The web backend over a real installation, with requests sent straight to
/// its router (no socket): the routes, the backend, MySQL, the shards and the
/// queue are all real.
final class WebHarness: @unchecked Sendable {
    // @unchecked Sendable: every stored property is immutable after init.
    static let token = "test-token-0123456789abcdef"

    let installation: Installation
    let core: GenerationCore
    let watermark: SnapshotWatermark
    let backend: WebBackend
    let registry = PrometheusCollectorRegistry()
    let router: Router<BasicRequestContext>
    let responder: RouterResponder<BasicRequestContext>

    /// - Parameters:
    ///   - memberLimit: fixture members imported.
    ///   - generate: whether every member's set is generated first.
    ///   - cachedSets: the ranked-set cache's capacity (0: every page reads its set whole).
    init(
        memberLimit: Int? = 300, generate: Bool = true, installation existing: Installation? = nil, generateFirst: Bool = false,
        accessLog: LogRecorder? = nil, cachedSets: Int = 64, configure: (inout GenerationSettings) -> Void = { _ in }
    ) throws {
        installation = try existing ?? Installation(memberLimit: memberLimit)
        var manager = ShardConnectionManager.Configuration()
        manager.connectTimeout = .milliseconds(250)
        manager.readTimeout = .milliseconds(800)
        (core, watermark) = try installation.core(
            manager: manager, scores: WebSettings.scoreStore, registry: registry, program: .serve, configure: configure)
        var settings = WebSettings()
        settings.ioThreads = 4
        settings.cachedSets = cachedSets
        backend = WebBackend(core: core, queue: WorkQueue(), settings: settings)
        if (generate && existing == nil) || generateFirst {
            let generator = Generator(core: core)
            for member in installation.members { _ = try generator.regenerate(member.id) }
        }
        var accessLogger = accessLog?.logger(label: "access")
        accessLogger?.logLevel = .debug
        router = WebRoutes.router(backend: backend, token: Self.token, registry: registry, accessLog: accessLogger)
        responder = router.buildResponder()
    }

    /// The backend's threads are joined on a thread of their own (they
    /// may be waiting out a timeout): the last reference often drops on the
    /// cooperative pool. The installation's servers live until they are
    /// joined, so no thread meets a server killed under it.
    deinit {
        let backend = backend
        let installation = installation
        Thread.detachNewThread { withExtendedLifetime(installation) { backend.shutdown() } }
    }

    struct Reply: Sendable {
        var status: Int
        var headers: HTTPFields
        var body: String

        /// The body as a JSON object.
        var json: [String: Any] {
            guard let data = body.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { return [:] }
            return object
        }

        /// `error.code` of an error body.
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }

        /// The matches of a page as (id, score) pairs.
        var matches: [Match] {
            (json["matches"] as? [[String: Any]] ?? []).map { entry in
                Match(id: MemberID((entry["id"] as? Int) ?? 0), tenths: Score.parse(entry["score"] as? String ?? "") ?? -1)
            }
        }
    }

    /// Sends one request to the router. `token: nil` sends no Authorization header.
    func send(
        _ method: HTTPRequest.Method, _ path: String, body: String? = nil, token: String? = WebHarness.token,
        headers extra: HTTPFields = [:]
    ) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        let buffer = body.map { ByteBuffer(string: $0) } ?? ByteBuffer()
        if body != nil { headers[.contentLength] = String(buffer.readableBytes) }
        let request = Request(
            head: HTTPRequest(method: method, scheme: "http", authority: "localhost", path: path, headerFields: headers),
            body: RequestBody(buffer: buffer))
        var logger = Logger(label: "web-test")
        logger.logLevel = .warning
        let context = BasicRequestContext(source: ApplicationRequestContextSource(channel: NIOAsyncTestingChannel(), logger: logger))
        let response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        let writer = CollectingWriter()
        try await response.body.write(writer)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: writer.collected))
    }

    /// Applies what changed in MySQL to the snapshot, as the refresher
    /// service does every second in a running server.
    func refreshSnapshot(since watermark: SnapshotWatermark) throws -> SnapshotWatermark {
        let connection = try installation.connectMySQL()
        defer { connection.close() }
        try core.follower.refresh(in: StoreSession(connection: connection))
        return core.follower.watermark
    }

    /// Evicts `member` as `kindred evict` leaves them: no set, no
    /// generation recorded, no shard.
    func evict(_ member: MemberID) throws {
        let shard = try self.shard(of: member)
        _ = try core.scores.removeSet(member, shard: shard)
        let connection = try installation.connectMySQL()
        defer { connection.close() }
        try GenerationStore(connection: connection).forget(member)
        try core.directory.release(member, in: core.sessions.storeSession())
    }

    /// The shard `member`'s set is on.
    func shard(of member: MemberID) throws -> UInt32 {
        try require(try core.directory.shard(of: member, in: core.sessions.storeSession()), "member \(member) has no shard")
    }

    /// The next job waiting in the queue (taken by a throwaway worker id), if any.
    func takeJob() throws -> Job? {
        let redis = try installation.queueServer.connect()
        defer { redis.close() }
        return try backend.queue.fetch(worker: "test-\(UInt32.random(in: 0...UInt32.max))", on: QueueConnection(redis))
    }
}

/// Collects a response body.
final class CollectingWriter: ResponseBodyWriter, @unchecked Sendable {
    // @unchecked Sendable: used by one task at a time.
    var collected = ByteBuffer()

    func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        collected.writeBuffer(&buffer)
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

/// `#require` for a non-test context (throws instead of recording).
func require<T>(_ value: T?, _ message: String = "value was nil") throws -> T {
    guard let value else { throw HarnessError(message) }
    return value
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One import-format line.
func memberLine(id: MemberID, age: Int, answers: String = "[]") -> String {
    """
    {"id": \(id), "gender": "woman", "seeking": ["man"], "age": \(age), "age_min": 25, "age_max": 40, \
    "last_active": "2026-11-01T10:00:00Z", "answers": \(answers)}
    """
}

/// `member`'s data as an import line under another id.
func memberLine(from member: Member, id: MemberID) -> String {
    let answers = member.answers.map { answer in
        "{\"q\": \(answer.question), \"answer\": \(answer.option), \"accept\": \(answer.accepted.options), \"importance\": \(answer.importance.rawValue)}"
    }.joined(separator: ", ")
    let seeking = member.seeking.genders.map { "\"\($0.name)\"" }.joined(separator: ", ")
    let blocked = member.blocked.map(String.init).joined(separator: ", ")
    return """
        {"id": \(id), "gender": "\(member.gender.name)", "seeking": [\(seeking)], "age": \(member.age), \
        "age_min": \(member.ageMin), "age_max": \(member.ageMax), "answers": [\(answers)], "blocked": [\(blocked)]}
        """
}

/// A plain HTTP/1.1 GET over a socket; the whole response as text.
func httpGet(port: Int, path: String, token: String?) throws -> String {
    try httpRequest("GET", port: port, path: path, token: token)
}

/// One HTTP/1.1 request over a socket to 127.0.0.1:`port`; the whole
/// response as text (the server closes the connection after it). With a
/// `body`, it is sent as JSON with its length. Sends and receives are
/// bounded (30 s: a bound on waiting, not a speed test; a full test run on
/// two cores can hold an answer for seconds).
func httpRequest(_ method: String, port: Int, path: String, token: String?, body: [UInt8]? = nil) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket failed") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 30, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw HarnessError("connect failed") }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if let token { head += "Authorization: Bearer \(token)\r\n" }
    if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
    head += "\r\n"
    let request = Array(head.utf8) + (body ?? [])
    var sent = 0
    while sent < request.count {
        let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard count > 0 else { throw HarnessError("send failed after \(sent) bytes") }
        sent += count
    }
    var response = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = recv(fd, &chunk, chunk.count, 0)
        if count <= 0 { break }
        response += chunk[0..<count]
    }
    return String(decoding: response, as: UTF8.self)
}

extension WebHarness {
    /// Serves this harness's backend on a free loopback port through the
    /// program's own services (`WebServer.services`), runs `body` with the
    /// port, then shuts the server down gracefully and waits for it.
    func withLiveServer(logLevel: Logger.Level = .warning, _ body: (Int) async throws -> Void) async throws {
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let services = WebServer.services(
            backend: backend, host: "127.0.0.1", port: 0, token: Self.token, registry: registry,
            onServerRunning: { portContinuation.yield($0) })
        var logger = core.logger
        logger.logLevel = logLevel
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            defer { tasks.cancelAll() }
            var ports = portStream.makeAsyncIterator()
            guard let port = await ports.next() else { throw HarnessError("the server never reported its port") }
            try await body(port)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
