// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// Release links of the handler executables (see docs/architecture.md, "Resident memory"): lld
/// with packed relative relocations (PIE kept, 12 kB of relocations instead of 1.5 MB), no exported
/// symbols (the loader never searches them), and the functions that start-up and an idle worker run
/// laid out together (`scripts/startup.order`), so they fault in as a few pages instead of
/// hundreds of scattered ones. Full effect with `scripts/build-release.sh`, which also compiles
/// every module with function sections.
let releaseLinking: [LinkerSetting] = [
    .unsafeFlags(
        [
            "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic",
            "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/scripts/startup.order",
            "-Xlinker", "--no-warn-symbol-ordering",
        ], .when(platforms: [.linux], configuration: .release))
]

let package = Package(
    name: "swift-worker-runtime",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "WorkerRuntime", targets: ["WorkerRuntime"]),
        .library(name: "WorkerRuntimeTesting", targets: ["WorkerRuntimeTesting"]),
        .library(name: "VectorIndex", targets: ["VectorIndex"]),
        .library(name: "MemoryStore", targets: ["MemoryStore"]),
        .executable(name: "echo", targets: ["Echo"]),
        .executable(name: "memory", targets: ["Memory"]),
        .executable(name: "mock-platform", targets: ["MockPlatform"]),
        .executable(name: "vector-bench", targets: ["VectorBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
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
        // curl_easy_setopt and friends are C variadics, which Swift cannot call: typed wrappers.
        .target(name: "CCurlHelpers", dependencies: ["CCurl"]),

        .target(
            name: "WorkerRuntime",
            dependencies: [
                "CCurl", "CCurlHelpers",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings),
        // bfloat16 kernels for the index (AVX512-BF16, chosen at run time; Debian's OpenBLAS has none).
        .target(name: "CVectorKernels"),
        .target(name: "VectorIndex", dependencies: ["COpenBLAS", "CVectorKernels"], swiftSettings: swiftSettings),
        .target(name: "MemoryStore", dependencies: ["VectorIndex"], swiftSettings: swiftSettings),
        .target(
            name: "WorkerRuntimeTesting",
            dependencies: [
                "WorkerRuntime",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),

        .executableTarget(
            name: "Echo", dependencies: ["WorkerRuntime"], path: "Handlers/Echo", swiftSettings: swiftSettings,
            linkerSettings: releaseLinking),
        .executableTarget(
            name: "Memory", dependencies: ["WorkerRuntime", "MemoryStore"], path: "Handlers/Memory",
            swiftSettings: swiftSettings, linkerSettings: releaseLinking),
        .executableTarget(
            name: "MockPlatform",
            dependencies: [
                "WorkerRuntimeTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "benchmarks/MockPlatform", swiftSettings: swiftSettings),

        .executableTarget(
            name: "VectorBench", dependencies: ["VectorIndex", "MemoryStore"], path: "benchmarks/VectorBench", swiftSettings: swiftSettings),
        .testTarget(name: "VectorIndexTests", dependencies: ["VectorIndex", "CVectorKernels"], swiftSettings: swiftSettings),
        .testTarget(name: "MemoryStoreTests", dependencies: ["MemoryStore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "WorkerRuntimeTests",
            dependencies: [
                "WorkerRuntime", "WorkerRuntimeTesting", "Echo", "Memory", "MemoryStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
    ]
)
