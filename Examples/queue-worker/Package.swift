// swift-tools-version:6.1
// A handler written outside this repository's package, as a user would: it sees only the public
// API. It is queue-only (no WorkerEndpointServer), so it links no HTTP server; scripts/check-modules.sh
// builds it, runs its test and checks what the binary links. SwiftPM names a path dependency after
// its directory, so the script links the repository as `.build/local/swift-worker-runtime` first;
// your own package names it by URL instead:
// .package(url: "https://github.com/<you>/swift-worker-runtime.git", from: "0.1.0")
import PackageDescription

let package = Package(
    name: "queue-worker",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "../../.build/local/swift-worker-runtime")],
    targets: [
        .executableTarget(
            name: "QueueWorker",
            dependencies: [.product(name: "WorkerRuntime", package: "swift-worker-runtime")]),
        .testTarget(
            name: "QueueWorkerTests",
            dependencies: [
                "QueueWorker",
                .product(name: "WorkerRuntime", package: "swift-worker-runtime"),
                .product(name: "WorkerRuntimeTesting", package: "swift-worker-runtime"),
            ]),
    ]
)
