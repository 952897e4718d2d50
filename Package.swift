// swift-tools-version:6.1
import PackageDescription

// The folders show the layers (docs/architecture.md, "Modules and folders"): Sources/System (C
// libraries and shims), Sources/Clients, Sources/Runtime, Sources/Features, Sources/Search (the
// memory handler's libraries), Handlers, Fakes (servers the tests and the benchmarks both run),
// benchmarks, Tests.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// A library target in one of the layer folders under Sources/.
func module(_ name: String, in layer: String, _ dependencies: [Target.Dependency] = []) -> Target {
    .target(name: name, dependencies: dependencies, path: "Sources/\(layer)/\(name)", swiftSettings: swiftSettings)
}

/// A system C library: module.modulemap + one-line shim.h under Sources/System.
func systemLibrary(_ name: String, pkgConfig: String, apt: String, brew: String, yum: String) -> Target {
    .systemLibrary(
        name: name, path: "Sources/System/\(name)", pkgConfig: pkgConfig,
        providers: [.apt([apt]), .brew([brew]), .yum([yum])])
}

// Products of other packages, by name.
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let serviceLifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let unixSignals = Target.Dependency.product(name: "UnixSignals", package: "swift-service-lifecycle")
let coreMetrics = Target.Dependency.product(name: "CoreMetrics", package: "swift-metrics")
let metricsTestKit = Target.Dependency.product(name: "MetricsTestKit", package: "swift-metrics")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let hummingbirdCore = Target.Dependency.product(name: "HummingbirdCore", package: "hummingbird")
let hummingbirdTesting = Target.Dependency.product(name: "HummingbirdTesting", package: "hummingbird")
let httpTypes = Target.Dependency.product(name: "HTTPTypes", package: "swift-http-types")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let nioHTTPTypes = Target.Dependency.product(name: "NIOHTTPTypes", package: "swift-nio-extras")
let nioHTTPTypesHTTP1 = Target.Dependency.product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras")
let jwtKit = Target.Dependency.product(name: "JWTKit", package: "jwt-kit")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let base64 = Target.Dependency.product(name: "ExtrasBase64", package: "swift-extras-base64")

// Named groups of what many targets take together.
/// A route group on the endpoint server: Hummingbird's router and its HTTP types.
let routeGroup: [Target.Dependency] = [hummingbird, httpTypes, nioCore, logging]
/// What every handler's composition root uses: the runtime, the endpoint API over HTTP, MCP.
let handlerBase: [Target.Dependency] = ["WorkerRuntime", "WorkerJSON", "WorkerEndpointServer", "WorkerMCP", "WorkerOpenAI", "WorkerFleet", logging]
/// What every test target starts from: the shared helpers and the harness.
let testBase: [Target.Dependency] = ["TestSupport", "WorkerRuntime", "WorkerRuntimeTesting", "WorkerJSON"]
/// Hummingbird's testing client and the types a route test names.
let routeTesting: [Target.Dependency] = [hummingbird, hummingbirdTesting, httpTypes, nioCore, logging]

let package = Package(
    name: "swift-worker-runtime",
    platforms: [.macOS(.v15)],
    products: [
        // The SDK (docs/architecture.md, "What the SDK offers"): what a handler author imports. Each
        // is built by version from outside by scripts/check-consumer.sh.
        .library(name: "WorkerJSON", targets: ["WorkerJSON"]),
        .library(name: "WorkerRuntime", targets: ["WorkerRuntime"]),
        .library(name: "WorkerRuntimeTesting", targets: ["WorkerRuntimeTesting"]),
        .library(name: "EndpointAPI", targets: ["EndpointAPI"]),
        .library(name: "WorkerEndpointServer", targets: ["WorkerEndpointServer"]),
        .library(name: "WorkerMCP", targets: ["WorkerMCP"]),
        .library(name: "MCPAuth", targets: ["MCPAuth"]),
        .library(name: "WorkerCache", targets: ["WorkerCache"]),
        .library(name: "WorkerOpenAI", targets: ["WorkerOpenAI"]),
        .library(name: "WorkerFleet", targets: ["WorkerFleet"]),
        .library(name: "CurlHTTP", targets: ["CurlHTTP"]),
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .library(name: "PostgresClient", targets: ["PostgresClient"]),
        .library(name: "EndpointClient", targets: ["EndpointClient"]),
        .library(name: "VectorIndex", targets: ["VectorIndex"]),
        .library(name: "MemoryStore", targets: ["MemoryStore"]),
        .library(name: "TextEmbedding", targets: ["TextEmbedding"]),
        .executable(name: "echo", targets: ["Echo"]),
        .executable(name: "memory", targets: ["Memory"]),
        .executable(name: "context7", targets: ["Context7"]),
        .executable(name: "orchestrator", targets: ["Orchestrator"]),
        .executable(name: "gateway", targets: ["Gateway"]),
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
        // JWS and JWK for MCP authorization (docs/mcp.md): no cryptography of our own.
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-extras/swift-extras-base64.git", from: "1.2.0"),
    ],
    targets: [
        // MARK: System: C libraries (module.modulemap + one-line shim.h each) and shims.
        systemLibrary("CCurl", pkgConfig: "libcurl", apt: "libcurl4-openssl-dev", brew: "curl", yum: "libcurl-devel"),
        systemLibrary("CLibPQ", pkgConfig: "libpq", apt: "libpq-dev", brew: "libpq", yum: "libpq-devel"),
        systemLibrary("CHiredis", pkgConfig: "hiredis", apt: "libhiredis-dev", brew: "hiredis", yum: "hiredis-devel"),
        systemLibrary("COpenBLAS", pkgConfig: "openblas", apt: "libopenblas-dev", brew: "openblas", yum: "openblas-devel"),
        systemLibrary("COpenSSL", pkgConfig: "openssl", apt: "libssl-dev", brew: "openssl", yum: "openssl-devel"),
        // curl_easy_setopt and friends are C variadics, which Swift cannot call: typed wrappers.
        .target(name: "CCurlHelpers", dependencies: ["CCurl"], path: "Sources/System/CCurlHelpers"),
        // Linux's epoll and eventfd headers, for the clients' readiness reactor.
        .target(name: "CEpoll", path: "Sources/System/CEpoll"),

        // MARK: Clients: outbound HTTP, Redis, PostgreSQL, the endpoint API; no server code.
        // The outbound HTTP client (libcurl's multi interface on a thread of its own).
        module("CurlHTTP", in: "Clients", ["CCurl", "CCurlHelpers", "WorkerJSON"]),
        // The bounded connection pool and the readiness reactor the clients share (pure state machines under a mutex).
        module("ConnectionPool", in: "Clients", ["CEpoll"]),
        // A Redis client: hiredis formats commands and reads replies; the socket and TLS (OpenSSL) are ours.
        module("RedisClient", in: "Clients", ["CHiredis", "COpenSSL", "ConnectionPool"]),
        // A PostgreSQL client on libpq (non-blocking connections waiting on the reactor).
        module("PostgresClient", in: "Clients", ["CLibPQ", "ConnectionPool", "WorkerJSON"]),
        // A client of RunPod's endpoint API (and of --local workers): every route, and waiting for a result.
        module("EndpointClient", in: "Clients", ["CurlHTTP", "EndpointAPI", "WorkerJSON"]),

        // MARK: Runtime: the handler API, the queue loop, the endpoint API over HTTP, the harness.
        // JSON values, a strict parser and the canonical serializer; no dependencies.
        module("WorkerJSON", in: "Runtime"),
        // RunPod's endpoint API on the wire (statuses, request and status bodies, limits), shared by
        // the server here and the endpoint client.
        module("EndpointAPI", in: "Runtime", ["WorkerJSON"]),
        // The handler API, the queue worker, one-shot runs, the core's configuration, modes and features.
        module(
            "WorkerRuntime", in: "Runtime",
            ["WorkerJSON", "CurlHTTP", "EndpointAPI", logging, argumentParser, serviceLifecycle, unixSignals, coreMetrics]),
        // The endpoint API over HTTP (`--local`, load balancing): Hummingbird, auth, the request guard,
        // Prometheus /metrics; features add route groups.
        module(
            "WorkerEndpointServer", in: "Runtime",
            ["WorkerRuntime", "WorkerJSON", "CurlHTTP", "EndpointAPI", serviceLifecycle, hummingbirdCore, nioHTTPTypes, nioHTTPTypesHTTP1,
             nioHTTP1, coreMetrics, prometheus] + routeGroup),
        // For handler authors' tests: a one-call harness, an in-memory platform, a mock worker API server.
        module("WorkerRuntimeTesting", in: "Runtime", ["WorkerRuntime", "WorkerJSON", "CurlHTTP", logging, nioCore, nioPosix, nioHTTP1]),

        // MARK: Features: each reads its own settings and adds routes, modes or middleware.
        // MCP for every handler's tools: streamable HTTP at /mcp (a route group) and stdio (`--mcp`).
        // MCP authorization as an OAuth 2.1 resource server: protected-resource metadata, bearer
        // challenges, JWT access tokens checked against the issuer's JWKS (jwt-kit), introspection.
        module("MCPAuth", in: "Features", ["WorkerRuntime", "WorkerJSON", "CurlHTTP", jwtKit, crypto, base64, logging]),
        module("WorkerMCP", in: "Features", ["WorkerRuntime", "WorkerEndpointServer", "WorkerJSON", "EndpointAPI", "MCPAuth", serviceLifecycle] + routeGroup),
        // The OpenAI passthrough: `openai_route` jobs forwarded to OPENAI_BASE_URL (no HTTP server).
        module("WorkerOpenAI", in: "Features", ["WorkerRuntime", "WorkerJSON", "CurlHTTP", "EndpointAPI", logging]),
        // The response cache (in process or Redis, single-flight) and Redis-shared rate limits.
        module("WorkerCache", in: "Features", ["WorkerRuntime", "WorkerJSON", "RedisClient", "COpenSSL", logging, coreMetrics]),
        // Fleets: gateways and workers of one endpoint on many machines, jobs in Redis (docs/fleet.md).
        module(
            "WorkerFleet", in: "Features",
            ["WorkerRuntime", "WorkerJSON", "WorkerEndpointServer", "EndpointAPI", "RedisClient", "CurlHTTP", logging, serviceLifecycle]),

        // MARK: Search: the memory handler's libraries (vectors, their store, embeddings) and kernels.
        // int8 pre-filter kernels for the index (AVX512-VNNI, chosen at run time; Debian's OpenBLAS has none).
        .target(name: "CVectorKernels", path: "Sources/Search/CVectorKernels"),
        module("VectorIndex", in: "Search", ["COpenBLAS", "CVectorKernels"]),
        // MARK: Gateway: the gateway handler's decisions, pure (configuration, routes, breakers, choice).
        module("GatewayCore", in: "Gateway", ["WorkerJSON"]),
        module("MemoryStore", in: "Search", ["VectorIndex"]),
        // The encoder's kernels. Their optimization level is the build's (scripts pass -Xcc -O3), not
        // the manifest's: unsafe flags would stop this package being taken by version.
        .target(name: "CEncoderKernels", path: "Sources/Search/CEncoderKernels"),
        // Sentence embeddings in process: a sentence-transformers BERT model on OpenBLAS.
        module("TextEmbedding", in: "Search", ["COpenBLAS", "CEncoderKernels", "WorkerJSON"]),

        // MARK: Handlers: one executable each; release link flags are scripts/build-release.sh's.
        .executableTarget(name: "Echo", dependencies: handlerBase, path: "Handlers/Echo", swiftSettings: swiftSettings),
        .executableTarget(
            name: "Memory", dependencies: handlerBase + ["CurlHTTP", "MemoryStore", "VectorIndex", "TextEmbedding"], path: "Handlers/Memory",
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "Context7", dependencies: handlerBase + ["CurlHTTP", "WorkerCache", "RedisClient"], path: "Handlers/Context7",
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "Orchestrator",
            dependencies: handlerBase + ["CurlHTTP", "EndpointClient", "EndpointAPI", "PostgresClient", serviceLifecycle],
            path: "Handlers/Orchestrator", swiftSettings: swiftSettings),
        .executableTarget(
            name: "Gateway", dependencies: handlerBase + ["GatewayCore", "EndpointClient", "EndpointAPI", "CurlHTTP", "RedisClient", serviceLifecycle],
            path: "Handlers/Gateway", swiftSettings: swiftSettings),
        // new-handler: targets

        // MARK: Fakes: servers that tests run in process and benchmarks as `fake-upstream`.
        // Serving a router on a loopback port: the fakes and TestSupport share it.
        .target(
            name: "LoopbackServer", dependencies: [hummingbird, nioCore, logging, serviceLifecycle], path: "Fakes/LoopbackServer",
            swiftSettings: swiftSettings),
        // An OpenAI-compatible chat API answering the orchestrator's JSON schemas.
        .target(name: "StubLLM", dependencies: ["WorkerJSON", "LoopbackServer"] + routeGroup, path: "Fakes/StubLLM", swiftSettings: swiftSettings),
        // Context7's API.
        .target(
            name: "FakeContext7", dependencies: ["WorkerJSON", "LoopbackServer"] + routeGroup, path: "Fakes/FakeContext7",
            swiftSettings: swiftSettings),

        // MARK: Benchmarks' executables.
        .executableTarget(
            name: "MockPlatform", dependencies: ["WorkerRuntimeTesting", "WorkerJSON", argumentParser, nioCore], path: "benchmarks/MockPlatform",
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "EmbeddingBench", dependencies: ["TextEmbedding", "WorkerJSON"], path: "benchmarks/EmbeddingBench", swiftSettings: swiftSettings),
        .executableTarget(
            name: "VectorBench", dependencies: ["VectorIndex", "MemoryStore"], path: "benchmarks/VectorBench", swiftSettings: swiftSettings),
        .executableTarget(
            name: "PostgresBench", dependencies: ["PostgresClient"], path: "benchmarks/PostgresBench", swiftSettings: swiftSettings),
        .executableTarget(
            name: "RedisBench", dependencies: ["RedisClient"], path: "benchmarks/RedisBench", swiftSettings: swiftSettings),
        .executableTarget(
            name: "FakeUpstream", dependencies: ["FakeContext7", "StubLLM", argumentParser], path: "benchmarks/FakeUpstream",
            swiftSettings: swiftSettings),

        // MARK: Tests: one target per module and per handler; whole processes and load in their own.
        // Helpers the test targets share (loopback servers, child processes, test passes).
        .target(
            name: "TestSupport",
            dependencies: [
                "WorkerRuntime", "WorkerRuntimeTesting", "WorkerJSON", "CurlHTTP", "LoopbackServer", logging, coreMetrics, hummingbird, nioCore,
            ],
            path: "Tests/TestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "WorkerJSONTests", dependencies: ["TestSupport", "WorkerJSON"], swiftSettings: swiftSettings),
        .testTarget(name: "CurlHTTPTests", dependencies: testBase + ["CurlHTTP"] + routeTesting, swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerCacheTests", dependencies: testBase + ["WorkerCache", "RedisClient", logging, coreMetrics], swiftSettings: swiftSettings),
        .testTarget(
            name: "EndpointClientTests", dependencies: ["TestSupport", "EndpointClient", "EndpointAPI", "CurlHTTP", "WorkerJSON"] + routeTesting,
            swiftSettings: swiftSettings),
        .testTarget(name: "RedisClientTests", dependencies: ["TestSupport", "RedisClient", "WorkerRuntimeTesting"], swiftSettings: swiftSettings),
        .testTarget(name: "PostgresClientTests", dependencies: testBase + ["PostgresClient"], swiftSettings: swiftSettings),
        .testTarget(name: "ConnectionPoolTests", dependencies: testBase + ["ConnectionPool"], swiftSettings: swiftSettings),
        .testTarget(name: "EndpointAPITests", dependencies: ["TestSupport", "EndpointAPI", "WorkerJSON"], swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerRuntimeTests", dependencies: testBase + ["CurlHTTP", logging, coreMetrics, metricsTestKit, serviceLifecycle],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerEndpointServerTests",
            dependencies: testBase + ["WorkerEndpointServer", "WorkerOpenAI", "CurlHTTP", "EndpointAPI"] + routeTesting,
            swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerMCPTests", dependencies: testBase + ["WorkerMCP", "MCPAuth", "WorkerEndpointServer", "CurlHTTP", "EndpointAPI"] + routeTesting,
            swiftSettings: swiftSettings),
        .testTarget(
            name: "MCPAuthTests", dependencies: testBase + ["MCPAuth", "CurlHTTP", jwtKit, crypto] + routeTesting,
            swiftSettings: swiftSettings),
        .testTarget(name: "WorkerRuntimeTestingTests", dependencies: testBase, swiftSettings: swiftSettings),
        .testTarget(name: "WorkerOpenAITests", dependencies: testBase + ["WorkerOpenAI", "CurlHTTP"], swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerFleetTests",
            dependencies: testBase + ["WorkerFleet", "WorkerEndpointServer", "RedisClient", "EndpointAPI", "CurlHTTP"] + routeTesting,
            swiftSettings: swiftSettings),
        .testTarget(name: "GatewayCoreTests", dependencies: ["TestSupport", "GatewayCore", "WorkerJSON"], swiftSettings: swiftSettings),
        .testTarget(name: "VectorIndexTests", dependencies: ["TestSupport", "VectorIndex", "CVectorKernels"], swiftSettings: swiftSettings),
        .testTarget(name: "MemoryStoreTests", dependencies: ["TestSupport", "MemoryStore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TextEmbeddingTests", dependencies: ["TestSupport", "TextEmbedding", "CEncoderKernels", "WorkerJSON"], exclude: ["Fixtures"],
            swiftSettings: swiftSettings),
        .testTarget(name: "EchoTests", dependencies: testBase + ["Echo"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MemoryTests", dependencies: testBase + ["Memory", "MemoryStore", "CurlHTTP", "TextEmbedding", "WorkerOpenAI", hummingbird],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "Context7Tests", dependencies: testBase + ["Context7", "FakeContext7", "WorkerCache", "RedisClient", "CurlHTTP"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "OrchestratorTests",
            dependencies: testBase + ["Orchestrator", "StubLLM", "FakeContext7", "EndpointClient", "EndpointAPI", "PostgresClient", "CurlHTTP", logging],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "GatewayTests", dependencies: testBase + ["Gateway", "GatewayCore", "EndpointClient", "EndpointAPI", "CurlHTTP", "LoopbackServer", "RedisClient"] + routeTesting,
            swiftSettings: swiftSettings),
        // new-handler: tests
        // Whole processes (the built executables) and load: run after everything is built.
        .testTarget(name: "IntegrationTests", dependencies: testBase + ["CurlHTTP"], swiftSettings: swiftSettings),
    ]
)
