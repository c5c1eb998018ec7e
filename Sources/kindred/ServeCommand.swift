import ArgumentParser
import Foundation
import KindredConfig
import KindredCore
import KindredSupport
import Logging
import MemberStore
import MetricsEndpoint
import Prometheus
import ScoreStore
import ServiceLifecycle
import UnixSignals
import WebAPI
import WorkQueue

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the web backend: the HTTP API that serves members' ranked matches.",
        discussion: """
            Needs KINDRED_MYSQL, KINDRED_QUEUE and KINDRED_API_TOKEN (the bearer token every /v1 route \
            requires; from the environment or the config file, never a flag). Listens on KINDRED_LISTEN \
            (default 127.0.0.1:8080). Routes: GET /v1/members/{id}/matches, GET /v1/members/{id}/score/{other}, \
            PUT|DELETE /v1/members/{id}, POST /v1/members/{id}/login, /livez, /readyz, /healthz, /metrics, \
            /openapi.yaml, /browse/{id}. One access log line per request at info (docs/observability.md).
            """
    )

    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var scoring: ScoringOptions

    @Option(help: "Where to listen, HOST:PORT (default: $KINDRED_LISTEN, else 127.0.0.1:8080).")
    var listen: String?

    @Option(name: .customLong("io-threads"), help: "Threads for the requests' Redis and MySQL calls.")
    var ioThreads: Int = 8

    @Option(name: .customLong("read-threads"), help: "Threads that serve pages of cached sets, in batches of concurrent requests.")
    var readThreads: Int = 2

    @Option(name: .customLong("generation-threads"), help: "Threads that regenerate missing sets on the spot.")
    var generationThreads: Int = 2

    @Option(name: .customLong("cached-sets"), help: "Ranked sets kept in memory (validated against the shard on every read).")
    var cachedSets: Int = 2_000

    @OptionGroup var log: LogOptions

    func validate() throws {
        guard (1...256).contains(ioThreads) else { throw ValidationError("--io-threads must be 1 to 256") }
        guard (1...64).contains(readThreads) else { throw ValidationError("--read-threads must be 1 to 64") }
        guard (1...64).contains(generationThreads) else { throw ValidationError("--generation-threads must be 1 to 64") }
        guard cachedSets >= 0 else { throw ValidationError("--cached-sets must not be negative") }
    }

    func run() async throws {
        let configuration = try await configOptions.load()
        let logger = try log.logger("kindred.serve", configuration: configuration)
        let mysql = try mysqlConfiguration(configuration)
        let queue = try queueAddress(configuration)
        guard let token = configuration.apiToken, !token.isEmpty else {
            throw CLIError("no API token configured: set KINDRED_API_TOKEN (or \"api_token\" in the config file)")
        }
        guard token.utf8.count >= 16 else { throw CLIError("the API token must be at least 16 characters") }
        let (host, port) = try hostAndPort(listen ?? configuration.listen, setting: "KINDRED_LISTEN")
        let generation = GenerationSettings(scoring: try scoring.apply(to: configuration.scoring))
        var webSettings = WebSettings()
        webSettings.ioThreads = ioThreads
        webSettings.readThreads = readThreads
        webSettings.generationThreads = generationThreads
        webSettings.cachedSets = cachedSets
        let services = try await ServeAssembly.assemble(
            store: StoreConfiguration(mysql: mysql), queue: queue, generation: generation, web: webSettings, host: host, port: port,
            token: token, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("server stopped")
    }
}
