// swift-tools-version:6.0
import PackageDescription

// Targets follow ../shared/DESIGN.md §2: C shims → PQ → Surrogate → Selection (pure) → Daemon → tovd.
// Dependencies are chosen for build time on a 2-core CI box: no SwiftNIO, no swift-crypto (SHA-256 comes
// from the system libcrypto).
let package = Package(
    name: "tovd",
    platforms: [.macOS(.v14)],
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
        .target(name: "PQ", dependencies: ["CLibPQ", .product(name: "Logging", package: "swift-log")]),
        .target(name: "EmbeddedPostgres", dependencies: []),
        // The bf16 scoring kernel (AVX-512 BF16, chosen at run time): C, for the intrinsics Swift lacks.
        .target(name: "CKernels"),
        .target(name: "Surrogate", dependencies: ["CCrypto", "CKernels", "CLZ4", "COpenBLAS"]),
        .target(name: "Selection"),
        // JSONL rows (`tovd import`, the evaluation's data): Foundation only, so importing needs no model code.
        .target(name: "JSONL"),
        // The one ToV pipeline (DESIGN.md §8): U's draw, θ0, trajectories, per-row scoring; the daemon and
        // `tovd evaluate` both call it.
        .target(name: "ToVPipeline", dependencies: ["Surrogate", "Selection"]),
        .target(
            name: "Daemon",
            dependencies: [
                "PQ", "Surrogate", "Selection", "ToVPipeline",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            plugins: ["EmbedMigrations"]
        ),
        // migrations/*.sql are the schema's one source: embedded into Daemon at build time.
        .executableTarget(name: "EmbedMigrationsTool"),
        .plugin(name: "EmbedMigrations", capability: .buildTool(), dependencies: ["EmbedMigrationsTool"]),
        .target(name: "Evaluation", dependencies: ["JSONL", "Surrogate", "Selection", "ToVPipeline"]),
        .target(name: "TovTesting", dependencies: ["PQ", "EmbeddedPostgres", "Daemon", "Selection"]),
        .executableTarget(
            name: "tovd",
            dependencies: [
                "PQ", "EmbeddedPostgres", "Surrogate", "Selection", "Daemon", "Evaluation", "JSONL", "ToVPipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // MARK: - Tests: pure units need no database; IntegrationTests and ReliabilityTests start a real Postgres.
        .testTarget(name: "SurrogateTests", dependencies: ["Surrogate", "CKernels"], exclude: ["Fixtures"]),
        .testTarget(name: "SelectionTests", dependencies: ["Selection"]),
        .testTarget(name: "JSONLTests", dependencies: ["JSONL", "Selection"]),
        .testTarget(name: "ToVPipelineTests", dependencies: ["ToVPipeline", "Surrogate", "Selection", "Daemon", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Selection"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "JSONL", "Surrogate", "Selection", "ToVPipeline"], exclude: ["Fixtures/natural_instructions"]),
        .testTarget(name: "IntegrationTests", dependencies: ["PQ", "Daemon", "TovTesting", "EmbeddedPostgres", "Selection", "Surrogate", "ToVPipeline"], exclude: ["Fixtures"]),
        // The fault suite (docs/reliability.md): tovd processes killed, restarted and cut off under load.
        .testTarget(name: "ReliabilityTests", dependencies: ["PQ", "Daemon", "TovTesting", "EmbeddedPostgres"]),
    ],
    swiftLanguageModes: [.v5]
)
