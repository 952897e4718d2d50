// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// Release links of the handler executables (see docs/architecture.md, "Resident memory"): lld
/// with packed relative relocations (PIE kept, 12 kB of relocations instead of 1.5 MB), no exported
/// symbols (the loader never searches them), identical functions folded into one (specializations
/// and thunks repeat: 1.6 MB of echo's 23; nothing here compares function addresses), and the
/// functions that start-up and an idle worker run laid out together (`scripts/startup.order`), so
/// they fault in as a few pages instead of hundreds of scattered ones. Full effect with
/// `scripts/build-release.sh`, which also compiles every module with function sections.
let releaseLinking: [LinkerSetting] = [
    .unsafeFlags(
        [
            "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic",
            "-Xlinker", "--icf=all",
            "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/scripts/startup.order",
            "-Xlinker", "--no-warn-symbol-ordering",
        ], .when(platforms: [.linux], configuration: .release))
]

let package = Package(
    name: "swift-worker-runtime",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "WorkerJSON", targets: ["WorkerJSON"]),
        .library(name: "CurlHTTP", targets: ["CurlHTTP"]),
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .library(name: "EndpointClient", targets: ["EndpointClient"]),
        .library(name: "PostgresClient", targets: ["PostgresClient"]),
        .library(name: "EndpointAPI", targets: ["EndpointAPI"]),
        .library(name: "WorkerRuntime", targets: ["WorkerRuntime"]),
        .library(name: "WorkerEndpointServer", targets: ["WorkerEndpointServer"]),
        .library(name: "WorkerMCP", targets: ["WorkerMCP"]),
        .library(name: "WorkerCache", targets: ["WorkerCache"]),
        .library(name: "WorkerRuntimeTesting", targets: ["WorkerRuntimeTesting"]),
        .library(name: "VectorIndex", targets: ["VectorIndex"]),
        .library(name: "MemoryStore", targets: ["MemoryStore"]),
        .library(name: "TextEmbedding", targets: ["TextEmbedding"]),
        .executable(name: "echo", targets: ["Echo"]),
        .executable(name: "memory", targets: ["Memory"]),
        .executable(name: "context7", targets: ["Context7"]),
        .executable(name: "orchestrator", targets: ["Orchestrator"]),
        // new-handler: products
        .executable(name: "mock-platform", targets: ["MockPlatform"]),
        .executable(name: "vector-bench", targets: ["VectorBench"]),
        .executable(name: "embedding-bench", targets: ["EmbeddingBench"]),
        .executable(name: "fake-upstream", targets: ["FakeUpstream"]),
        .executable(name: "redis-bench", targets: ["RedisBench"]),
        .executable(name: "postgres-bench", targets: ["PostgresBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // No default traits: they pull swift-configuration and full Foundation into every handler.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
    ],
    targets: [
        // System C libraries: module.modulemap + one-line shim.h each (see docs/architecture.md).
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"]), .brew(["curl"]), .yum(["libcurl-devel"])]),
        .systemLibrary(
            name: "CLibPQ", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"]), .yum(["libpq-devel"])]),
        .systemLibrary(
            name: "CHiredis", pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"]), .brew(["hiredis"]), .yum(["hiredis-devel"])]),
        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"]), .brew(["openblas"]), .yum(["openblas-devel"])]),
        .systemLibrary(
            name: "COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"]), .brew(["openssl"]), .yum(["openssl-devel"])]),
        // curl_easy_setopt and friends are C variadics, which Swift cannot call: typed wrappers.
        .target(name: "CCurlHelpers", dependencies: ["CCurl"]),

        // JSON values, a strict parser and the canonical serializer; no dependencies.
        .target(name: "WorkerJSON", swiftSettings: swiftSettings),
        // The outbound HTTP client (libcurl's multi interface on a thread of its own).
        .target(name: "CurlHTTP", dependencies: ["CCurl", "CCurlHelpers", "WorkerJSON"], swiftSettings: swiftSettings),
        // A Redis client: hiredis formats commands and reads replies; the socket and TLS (OpenSSL) are ours.
        .target(name: "RedisClient", dependencies: ["CHiredis", "COpenSSL", "ConnectionPool"], swiftSettings: swiftSettings),
        // A PostgreSQL client on libpq (blocking calls on each connection's own queue).
        .target(name: "PostgresClient", dependencies: ["CLibPQ", "ConnectionPool", "WorkerJSON"], swiftSettings: swiftSettings),
        // The bounded connection pool the clients share (a pure state machine under a mutex).
        .target(name: "ConnectionPool", dependencies: ["CEpoll"], swiftSettings: swiftSettings),
        // Linux's epoll and eventfd headers, for the pool's readiness reactor.
        .target(name: "CEpoll"),
        // RunPod's endpoint API on the wire (statuses, request and status bodies, limits), shared by
        // the server here and the endpoint client.
        .target(name: "EndpointAPI", dependencies: ["WorkerJSON"], swiftSettings: swiftSettings),
        // A client of RunPod's endpoint API (and of --local workers): every route, and waiting for a result.
        .target(name: "EndpointClient", dependencies: ["CurlHTTP", "EndpointAPI", "WorkerJSON"], swiftSettings: swiftSettings),
        // The handler API, the queue worker, one-shot runs, configuration and modes.
        .target(
            name: "WorkerRuntime",
            dependencies: [
                "WorkerJSON", "CurlHTTP", "EndpointAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings),
        // The endpoint API over HTTP (`--local`, load balancing): Hummingbird, auth, OpenAI routes,
        // Prometheus /metrics; other modules add route groups.
        .target(
            name: "WorkerEndpointServer",
            dependencies: [
                "WorkerRuntime", "WorkerJSON", "CurlHTTP", "EndpointAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings),
        // MCP for every handler's tools: streamable HTTP at /mcp (a route group of the endpoint
        // server) and stdio (`--mcp`).
        .target(
            name: "WorkerMCP",
            dependencies: [
                "WorkerRuntime", "WorkerEndpointServer", "WorkerJSON", "EndpointAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        // The response cache (in process or Redis, single-flight) and Redis-shared rate limits.
        .target(
            name: "WorkerCache",
            dependencies: [
                "WorkerRuntime", "WorkerJSON", "RedisClient", "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings),
        // int8 pre-filter kernels for the index (AVX512-VNNI, chosen at run time; Debian's OpenBLAS has none).
        .target(name: "CVectorKernels"),
        .target(name: "VectorIndex", dependencies: ["COpenBLAS", "CVectorKernels"], swiftSettings: swiftSettings),
        .target(name: "MemoryStore", dependencies: ["VectorIndex"], swiftSettings: swiftSettings),
        // Sentence embeddings in process: a sentence-transformers BERT model on OpenBLAS.
        .target(name: "CEncoderKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "TextEmbedding", dependencies: ["COpenBLAS", "CEncoderKernels", "WorkerJSON"], swiftSettings: swiftSettings),
        // For handler authors' tests: a one-call harness, an in-memory platform, a mock worker API server.
        .target(
            name: "WorkerRuntimeTesting",
            dependencies: [
                "WorkerRuntime", "WorkerJSON", "CurlHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),

        .executableTarget(
            name: "Echo", dependencies: ["WorkerRuntime", "WorkerJSON", "WorkerEndpointServer", "WorkerMCP"], path: "Handlers/Echo",
            swiftSettings: swiftSettings, linkerSettings: releaseLinking),
        .executableTarget(
            name: "Memory",
            dependencies: [
                "WorkerRuntime", "WorkerJSON", "CurlHTTP", "WorkerEndpointServer", "WorkerMCP", "MemoryStore", "TextEmbedding",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Handlers/Memory", swiftSettings: swiftSettings, linkerSettings: releaseLinking),
        .executableTarget(
            name: "Context7",
            dependencies: [
                "WorkerRuntime", "WorkerJSON", "CurlHTTP", "WorkerEndpointServer", "WorkerMCP", "WorkerCache", "RedisClient",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Handlers/Context7", swiftSettings: swiftSettings, linkerSettings: releaseLinking),
        .executableTarget(
            name: "Orchestrator",
            dependencies: [
                "WorkerRuntime", "WorkerJSON", "CurlHTTP", "WorkerEndpointServer", "WorkerMCP", "EndpointClient", "EndpointAPI",
                "PostgresClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Handlers/Orchestrator", swiftSettings: swiftSettings, linkerSettings: releaseLinking),
        // new-handler: targets
        .executableTarget(
            name: "MockPlatform",
            dependencies: [
                "WorkerRuntimeTesting", "WorkerJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "benchmarks/MockPlatform", swiftSettings: swiftSettings),
        .executableTarget(
            name: "EmbeddingBench", dependencies: ["TextEmbedding", "WorkerJSON"], path: "benchmarks/EmbeddingBench",
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "VectorBench", dependencies: ["VectorIndex", "MemoryStore"], path: "benchmarks/VectorBench",
            swiftSettings: swiftSettings),

        .executableTarget(
            name: "PostgresBench", dependencies: ["PostgresClient"], path: "benchmarks/PostgresBench", swiftSettings: swiftSettings),
        .executableTarget(
            name: "RedisBench", dependencies: ["RedisClient"], path: "benchmarks/RedisBench", swiftSettings: swiftSettings),
        .executableTarget(
            name: "FakeUpstream",
            dependencies: ["FakeContext7", "StubLLM", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "benchmarks/FakeUpstream", swiftSettings: swiftSettings),
        // An OpenAI-compatible chat API answering the orchestrator's JSON schemas: in process in
        // the tests, `fake-upstream llm` in benchmarks.
        .target(
            name: "StubLLM",
            dependencies: [
                "WorkerJSON", "LoopbackServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/StubLLM", swiftSettings: swiftSettings),
        // Serving a router on a loopback port: the fakes and TestSupport share it.
        .target(
            name: "LoopbackServer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/LoopbackServer", swiftSettings: swiftSettings),
        // A fake of Context7's API: the context7 tests run it in process, benchmarks as `fake-upstream context7`.
        .target(
            name: "FakeContext7",
            dependencies: [
                "WorkerJSON", "LoopbackServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/FakeContext7", swiftSettings: swiftSettings),
        // Helpers the test targets share (loopback servers, child processes, test passes).
        .target(
            name: "TestSupport",
            dependencies: [
                "WorkerRuntime", "WorkerRuntimeTesting", "WorkerJSON", "CurlHTTP", "LoopbackServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/TestSupport", swiftSettings: swiftSettings),

        // One test target per module and per handler; process and load suites in their own.
        .testTarget(name: "WorkerJSONTests", dependencies: ["TestSupport", "WorkerJSON"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CurlHTTPTests",
            dependencies: [
                "TestSupport", "CurlHTTP", "WorkerJSON", "WorkerRuntimeTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerCacheTests",
            dependencies: [
                "TestSupport", "WorkerCache", "RedisClient", "WorkerRuntime", "WorkerRuntimeTesting", "WorkerJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "EndpointClientTests",
            dependencies: [
                "TestSupport", "EndpointClient", "EndpointAPI", "CurlHTTP", "WorkerJSON",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(name: "RedisClientTests", dependencies: ["TestSupport", "RedisClient"], swiftSettings: swiftSettings),
        .testTarget(
            name: "PostgresClientTests", dependencies: ["TestSupport", "PostgresClient", "WorkerJSON", "WorkerRuntimeTesting"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "ConnectionPoolTests", dependencies: ["TestSupport", "ConnectionPool", "WorkerRuntimeTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "EndpointAPITests", dependencies: ["TestSupport", "EndpointAPI", "WorkerJSON"], swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerRuntimeTests",
            dependencies: [
                "TestSupport", "WorkerRuntime", "WorkerRuntimeTesting", "WorkerJSON", "CurlHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerEndpointServerTests",
            dependencies: [
                "TestSupport", "WorkerEndpointServer", "WorkerRuntime", "WorkerRuntimeTesting", "WorkerJSON", "CurlHTTP", "EndpointAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerMCPTests",
            dependencies: [
                "TestSupport", "WorkerMCP", "WorkerEndpointServer", "WorkerRuntime", "WorkerRuntimeTesting", "WorkerJSON", "CurlHTTP",
                "EndpointAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerRuntimeTestingTests",
            dependencies: ["TestSupport", "WorkerRuntimeTesting", "WorkerRuntime", "WorkerJSON"], swiftSettings: swiftSettings),
        .testTarget(
            name: "VectorIndexTests", dependencies: ["TestSupport", "VectorIndex", "CVectorKernels"],
            swiftSettings: swiftSettings),
        .testTarget(name: "MemoryStoreTests", dependencies: ["TestSupport", "MemoryStore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TextEmbeddingTests", dependencies: ["TestSupport", "TextEmbedding", "CEncoderKernels", "WorkerJSON"],
            exclude: ["Fixtures"], swiftSettings: swiftSettings),
        .testTarget(
            name: "EchoTests", dependencies: ["TestSupport", "Echo", "WorkerRuntime", "WorkerRuntimeTesting", "WorkerJSON"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "MemoryTests",
            dependencies: [
                "TestSupport", "Memory", "MemoryStore", "WorkerRuntime", "WorkerRuntimeTesting", "WorkerJSON", "CurlHTTP", "TextEmbedding",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "Context7Tests",
            dependencies: [
                "TestSupport", "Context7", "FakeContext7", "WorkerCache", "RedisClient", "WorkerRuntime", "WorkerRuntimeTesting",
                "WorkerJSON", "CurlHTTP",
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "OrchestratorTests",
            dependencies: [
                "TestSupport", "Orchestrator", "StubLLM", "FakeContext7", "EndpointClient", "EndpointAPI", "PostgresClient", "WorkerRuntime",
                "WorkerRuntimeTesting", "WorkerJSON", "CurlHTTP",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        // new-handler: tests
        // Whole processes (the built executables) and load: run after everything is built.
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["TestSupport", "WorkerRuntimeTesting", "WorkerRuntime", "WorkerJSON", "CurlHTTP"],
            swiftSettings: swiftSettings),
    ]
)
