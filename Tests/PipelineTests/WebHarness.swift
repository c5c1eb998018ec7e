import Foundation
import Hummingbird
import Logging
import MariaDBClient
@_spi(Testing) import MemberStore
import NIOCore
import NIOEmbedded
import Pipeline
import Prometheus
import RedisClient
import Scoring
import ScoreStore
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
    let context: PipelineContext
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
        accessLog: LogRecorder? = nil, cachedSets: Int = 64, configure: (inout PipelineSettings) -> Void = { _ in }
    ) throws {
        installation = try existing ?? Installation(memberLimit: memberLimit)
        var manager = ShardConnectionManager.Configuration()
        manager.connectTimeout = .milliseconds(250)
        manager.readTimeout = .milliseconds(800)
        (context, watermark) = try installation.context(
            workers: 2, manager: manager, scores: WebSettings.scoreStore, registry: registry, program: .serve, configure: configure)
        var settings = WebSettings()
        settings.ioThreads = 4
        settings.cachedSets = cachedSets
        backend = WebBackend(context: context, settings: settings)
        if (generate && existing == nil) || generateFirst {
            let generator = Generator(context: context)
            for member in installation.members { _ = try generator.regenerate(member.id) }
        }
        var accessLogger = accessLog?.logger(label: "access")
        accessLogger?.logLevel = .debug
        router = WebRoutes.router(backend: backend, token: Self.token, registry: registry, accessLog: accessLogger)
        responder = router.buildResponder()
    }

    deinit { backend.shutdown() }

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
        try context.follower.refresh(in: StoreSession(connection: connection))
        return context.follower.watermark
    }

    /// Evicts `member` as `kindred evict` leaves them: no set, no
    /// generation recorded, no shard.
    func evict(_ member: MemberID) throws {
        let shard = try self.shard(of: member)
        _ = try context.scores.removeSet(member, shard: shard)
        let connection = try installation.connectMySQL()
        defer { connection.close() }
        try GenerationStore(connection: connection).forget(member)
        try context.directory.release(member, in: context.sessions.storeSession())
    }

    /// The shard `member`'s set is on.
    func shard(of member: MemberID) throws -> UInt32 {
        try require(try context.directory.shard(of: member, in: context.sessions.storeSession()), "member \(member) has no shard")
    }

    /// The next job waiting in the queue (taken by a throwaway worker id), if any.
    func takeJob() throws -> Job? {
        let redis = try installation.queueServer.connect()
        defer { redis.close() }
        return try context.queue.fetch(worker: "test-\(UInt32.random(in: 0...UInt32.max))", on: QueueConnection(redis))
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
