// swift-tools-version: 6.1
//
// Kindred: precomputed dating-site compatibility scores.
//
// Module graph (arrows point at what a module imports):
//
//   Scoring            the SCORING.md arithmetic, columnar population, top-N (stdlib only)
//   MemberFormat    -> Scoring            JSON Lines import format: parse, validate, write
//   Synthetic       -> Scoring, MemberFormat   deterministic synthetic populations
//   CHiredis, CMariaDB                    system libraries (module map + shim.h only)
//   RedisClient     -> CHiredis, KindredSupport   one connection over hiredis, pipelines, replies
//   MariaDBClient   -> CMariaDB, KindredSupport   one connection over libmariadb, prepared statements
//   KindredConfig   -> Scoring, MemberFormat   layered settings: config file < environment < flags
//   KindredSupport                        the concurrency helpers of the blocking-I/O layers (monitor, threads, executors,
//                                         stop signal, backoff, sleeps and Duration conversions), the version, URL percent-encoding,
//                                         byte sizes
//   KindredLogging  -> KindredSupport, swift-log   the log handler (text or JSON lines), durations in ms
//   MemberStore     -> MariaDBClient, RedisClient (the shard URL grammar), Scoring, MemberFormat
//                                         members, answers, blocks, shards, directory, generations
//   ScoreStore      -> RedisClient, Scoring   score sets on the shards, lazy connection manager
//   WorkQueue       -> RedisClient        the durable prioritised queue of member ids
//   KindredCore     -> the stores, WorkQueue, MemberFormat, KindredLogging, swift-log/metrics, service-lifecycle
//                                         the generation core: GenerationCore and GenerationSettings, Bootstrap, generator,
//                                         thread sessions, shared snapshot, set index, thread services, the shared periodic
//                                         services, metrics (no MariaDBClient: MemberStore's StoreConfiguration carries MySQL's)
//   MetricsEndpoint -> KindredCore, swift-prometheus, Hummingbird   Prometheus exposition, the /metrics /livez /readyz server
//   KindredWorker   -> KindredCore        the worker daemon: WorkerSettings, WorkerRuntime (with the queue), worker loop,
//                                         its own services, probe
//   KindredRuns     -> KindredCore        backfill and evict
//   WebAPI          -> KindredCore, MetricsEndpoint, the stores, Hummingbird   the web backend (no worker module)
//   kindred         -> everything above   the one executable: argument parsing and one assembly per program
//   kindred-bench   -> Scoring, Synthetic, the stores, KindredSupport   release-mode benchmarks (not tests)
//   FuzzTargets     -> MemberFormat, the clients, MemberStore (shard addresses), ScoreStore, WebAPI
//                                         one entry point per parser of outside input, for kindred-fuzz
//                                         (libFuzzer, only with KINDRED_FUZZ set: scripts/fuzz) and
//                                         FuzzTests (replays Tests/FuzzCorpus)
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// The packages the test harnesses drive (KindredTestKit and the tests that use it).
let harnessPackages: [Target.Dependency] = [
    .product(name: "Logging", package: "swift-log"),
    .product(name: "Metrics", package: "swift-metrics"),
    .product(name: "Prometheus", package: "swift-prometheus"),
    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
    .product(name: "Hummingbird", package: "hummingbird"),
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOEmbedded", package: "swift-nio"),
]

// What the program tests and the web backend's tests build against: the
// program modules, the stores and clients, the test kits, and the packages
// their harnesses drive.
let programTestDependencies: [Target.Dependency] = [
    "KindredCore", "KindredWorker", "MetricsEndpoint", "Scoring", "MemberFormat", "MemberStore", "ScoreStore", "WorkQueue",
    "MariaDBClient", "RedisClient", "TestSupport", "KindredTestKit", "WebAPI", "Synthetic", "KindredLogging", "KindredSupport",
] + harnessPackages

let package = Package(
    name: "Kindred",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kindred", targets: ["kindred"]),
        .library(name: "Scoring", targets: ["Scoring"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // C libraries: module map and shim header only.
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .systemLibrary(
            name: "CMariaDB",
            pkgConfig: "libmariadb",
            providers: [.apt(["libmariadb-dev"])]
        ),

        // Pure logic.
        .target(name: "Scoring", swiftSettings: swiftSettings),
        .target(name: "MemberFormat", dependencies: ["Scoring"], swiftSettings: swiftSettings),
        .target(name: "Synthetic", dependencies: ["Scoring", "MemberFormat"], swiftSettings: swiftSettings),

        .target(
            name: "KindredConfig",
            dependencies: [
                "Scoring", "MemberFormat",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),

        // Clients over the C libraries.
        .target(name: "RedisClient", dependencies: ["CHiredis", "KindredSupport"], swiftSettings: swiftSettings),
        .target(name: "MariaDBClient", dependencies: ["CMariaDB", "KindredSupport"], swiftSettings: swiftSettings),

        // Stores and the queue.
        .target(name: "KindredSupport", swiftSettings: swiftSettings),
        .target(
            name: "KindredLogging",
            dependencies: ["KindredSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MemberStore",
            dependencies: ["MariaDBClient", "RedisClient", "Scoring", "MemberFormat", "KindredSupport"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ScoreStore",
            dependencies: ["RedisClient", "Scoring", "KindredSupport"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkQueue",
            dependencies: ["RedisClient", "Scoring", "KindredSupport"],
            swiftSettings: swiftSettings
        ),

        // The generation core every program shares: services over the stores and the queue.
        .target(
            name: "KindredCore",
            dependencies: [
                "Scoring", "MemberFormat", "MemberStore", "ScoreStore", "WorkQueue", "KindredSupport", "KindredLogging",
                "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // The worker daemon: the generation loop on the queue and its own services.
        .target(
            name: "KindredWorker",
            dependencies: [
                "KindredCore", "Scoring", "MemberFormat", "MemberStore", "ScoreStore", "WorkQueue", "KindredSupport", "KindredLogging",
                "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // The runs: backfill and evict.
        .target(
            name: "KindredRuns",
            dependencies: [
                "KindredCore", "Scoring", "MemberFormat", "MemberStore", "ScoreStore", "WorkQueue", "KindredSupport", "KindredLogging",
                "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),

        // The metrics endpoint: Prometheus exposition and the /metrics /livez /readyz server.
        .target(
            name: "MetricsEndpoint",
            dependencies: [
                "KindredCore", "KindredSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),

        // The web backend.
        .target(
            name: "WebAPI",
            dependencies: [
                "KindredCore", "MetricsEndpoint", "Scoring", "MemberFormat", "MemberStore", "ScoreStore", "WorkQueue", "KindredSupport",
                "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        // Programs.
        .executableTarget(
            name: "kindred",
            dependencies: [
                "Scoring", "MemberFormat", "Synthetic", "RedisClient", "MariaDBClient", "KindredConfig",
                "KindredSupport", "KindredLogging", "MemberStore", "ScoreStore", "WorkQueue", "KindredCore", "KindredWorker", "KindredRuns", "MetricsEndpoint", "WebAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "kindred-bench",
            dependencies: [
                "Scoring", "MemberFormat", "Synthetic", "MariaDBClient", "RedisClient", "MemberStore", "ScoreStore",
                "WorkQueue", "KindredSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/KindredBench",
            swiftSettings: swiftSettings
        ),

        // Fuzz targets: one entry point per parser of outside input (see docs/testing.md's "Fuzzing").
        .target(
            name: "FuzzTargets",
            dependencies: [
                "MemberFormat", "Scoring", "RedisClient", "CHiredis", "MariaDBClient", "MemberStore", "ScoreStore", "WebAPI",
                "KindredConfig",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),

        // Tests.
        .target(
            name: "TestSupport",
            dependencies: ["RedisClient", "MariaDBClient", "KindredSupport"],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "ScoringTests", dependencies: ["Scoring", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MemberFormatTests",
            dependencies: ["MemberFormat", "Synthetic", "Scoring", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RedisClientTests",
            dependencies: ["RedisClient", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MariaDBClientTests",
            dependencies: ["MariaDBClient", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MemberStoreTests",
            dependencies: ["MemberStore", "MemberFormat", "Synthetic", "Scoring", "TestSupport", "KindredSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ScoreStoreTests",
            dependencies: ["ScoreStore", "Scoring", "Synthetic", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        // What the program tests share: an installation (servers, fixtures), the web harness, the kindred process, the worker and exact-set checks.
        .target(
            name: "KindredTestKit",
            dependencies: [
                "KindredCore", "KindredWorker", "MetricsEndpoint", "Scoring", "MemberFormat", "MemberStore", "ScoreStore", "WorkQueue",
                "MariaDBClient", "RedisClient", "TestSupport", "WebAPI", "KindredLogging", "KindredSupport",
            ] + harnessPackages,
            path: "Tests/KindredTestKit",
            swiftSettings: swiftSettings
        ),
        // The generation core: the generator, placements, the set index, shard administration, metrics.
        .testTarget(
            name: "KindredCoreTests",
            dependencies: programTestDependencies + ["KindredRuns"],
            swiftSettings: swiftSettings
        ),
        // The worker: its loop, services, probes, reconnects, cluster shards, sets kept true under churn, the worker process.
        .testTarget(
            name: "KindredWorkerTests",
            dependencies: programTestDependencies + ["KindredRuns"],
            swiftSettings: swiftSettings
        ),
        // Backfill and evict runs, in process and as kindred processes.
        .testTarget(
            name: "KindredRunsTests",
            dependencies: programTestDependencies + ["KindredRuns"],
            swiftSettings: swiftSettings
        ),
        // The kindred executable as operators run it: the operator commands.
        .testTarget(
            name: "KindredCLITests",
            dependencies: programTestDependencies + ["KindredRuns"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebAPITests",
            dependencies: programTestDependencies,
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkQueueTests",
            dependencies: ["WorkQueue", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "KindredLoggingTests",
            dependencies: ["KindredLogging", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KindredSupportTests",
            dependencies: ["KindredSupport", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KindredConfigTests",
            dependencies: ["KindredConfig", "Scoring"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer driver exists only for `scripts/fuzz`, which sets
// KINDRED_FUZZ and builds it with -sanitize=fuzzer,address into .build-fuzz:
// normal builds neither see nor build it.
if Context.environment["KINDRED_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(name: "kindred-fuzz", dependencies: ["FuzzTargets"], swiftSettings: swiftSettings))
}
