// swift-tools-version:6.0
import PackageDescription

// Targets follow ../shared/DESIGN.md §2: C shims → PQ → Surrogate → Selection (pure) → Daemon → tovd.
// Dependencies are chosen for build time on a 2-core CI box: no SwiftNIO, no swift-crypto (SHA-256 comes
// from the system libcrypto).
// Swift 6 language mode (strict concurrency) for every target.
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "tovd",
    platforms: [.macOS(.v15)],  // Synchronization.Mutex
    products: [
        .executable(name: "tovd", targets: ["tovd"]),
        .library(name: "PQ", targets: ["PQ"]),
        .library(name: "Surrogate", targets: ["Surrogate"]),
        .library(name: "Selection", targets: ["Selection"]),
        .library(name: "JSONL", targets: ["JSONL"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // MARK: - System libraries (pkg-config)
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // SHA-256 of checkpoints and data files: OpenSSL's, which libpq already brings.
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // MARK: - Libraries
        .target(name: "PQ", dependencies: ["CLibPQ", .product(name: "Logging", package: "swift-log")], swiftSettings: swift6),
        .target(name: "EmbeddedPostgres", dependencies: [], swiftSettings: swift6),
        // The bf16 scoring kernel (AVX-512 BF16, chosen at run time): C, for the intrinsics Swift lacks.
        .target(name: "CKernels"),
        .target(name: "Surrogate", dependencies: ["CCrypto", "CKernels", "CLZ4", "COpenBLAS"], swiftSettings: swift6),
        .target(name: "Selection", swiftSettings: swift6),
        // JSONL rows (`tovd import`, the evaluation's data): Foundation only, so importing needs no model code.
        .target(name: "JSONL", swiftSettings: swift6),
        // The one ToV pipeline (DESIGN.md §8): U's draw, θ0, trajectories, per-row scoring; the daemon and
        // `tovd evaluate` both call it.
        .target(name: "ToVPipeline", dependencies: ["Surrogate", "Selection"], swiftSettings: swift6),
        .target(
            name: "Daemon",
            dependencies: [
                "PQ", "Surrogate", "Selection", "ToVPipeline",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swift6,
            plugins: ["EmbedMigrations"]
        ),
        // migrations/*.sql are the schema's one source: embedded into Daemon at build time.
        .executableTarget(name: "EmbedMigrationsTool"),
        .plugin(name: "EmbedMigrations", capability: .buildTool(), dependencies: ["EmbedMigrationsTool"]),
        .target(name: "Evaluation", dependencies: ["JSONL", "Surrogate", "Selection", "ToVPipeline"], swiftSettings: swift6),
        .target(name: "TovTesting", dependencies: ["PQ", "EmbeddedPostgres", "Daemon", "Selection"], swiftSettings: swift6),
        .executableTarget(
            name: "tovd",
            dependencies: [
                "PQ", "EmbeddedPostgres", "Surrogate", "Selection", "Daemon", "Evaluation", "JSONL", "ToVPipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swift6
        ),

        // MARK: - Tests: pure units need no database; IntegrationTests and ReliabilityTests start a real Postgres.
        .testTarget(name: "SurrogateTests", dependencies: ["Surrogate", "CKernels"], exclude: ["Fixtures"], swiftSettings: swift6),
        .testTarget(name: "SelectionTests", dependencies: ["Selection"], swiftSettings: swift6),
        .testTarget(name: "JSONLTests", dependencies: ["JSONL", "Selection"], swiftSettings: swift6),
        .testTarget(name: "ToVPipelineTests", dependencies: ["ToVPipeline", "Surrogate", "Selection", "Daemon", .product(name: "Logging", package: "swift-log")], swiftSettings: swift6),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Selection"], swiftSettings: swift6),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "JSONL", "Surrogate", "Selection", "ToVPipeline"], exclude: ["Fixtures/natural_instructions"], swiftSettings: swift6),
        .testTarget(name: "IntegrationTests", dependencies: ["PQ", "Daemon", "TovTesting", "EmbeddedPostgres", "Selection", "Surrogate", "ToVPipeline"], exclude: ["Fixtures"], swiftSettings: swift6),
        // The fault suite (docs/reliability.md): tovd processes killed, restarted and cut off under load.
        .testTarget(name: "ReliabilityTests", dependencies: ["PQ", "Daemon", "Surrogate", "TovTesting", "EmbeddedPostgres"], swiftSettings: swift6),
    ]
)
