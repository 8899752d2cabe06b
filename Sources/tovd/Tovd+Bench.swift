import ArgumentParser
import Daemon
import EmbeddedPostgres
import Foundation
import Logging
import PQ
import Surrogate

extension Tovd {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the engine against PyTorch CPU, the daemon end to end, and the selection update.",
            subcommands: [ModelBench.self, ScoreBench.self, TrainBench.self, BootstrapBench.self, CapacityBench.self, DaemonBench.self, TargetsBench.self, SelectionBench.self, SwitchBench.self, ExportReference.self])

        /// A private cluster in `directory` (emptied first), migrated, holding one complete model
        /// version without checkpoints, for the benches that write scores without a model. The caller
        /// stops the cluster and closes the connection.
        static func startDatabase(in directory: String, epochs: Int, logger: Logger) async throws -> (LocalCluster, Connection, String) {
            try? FileManager.default.removeItem(atPath: directory)
            let cluster = LocalCluster(directory: directory)
            let conninfo = try await Task.detached { try cluster.start() }.value
            do {
                let c = try await Connection.connect(conninfo, applicationName: "tovd bench")
                do {
                    try await Migrator(logger: logger).up(on: c)
                    try await BenchQueries.modelVersionFixtureInsert(epochs: epochs, on: c)
                    return (cluster, c, conninfo)
                } catch {
                    c.close()
                    throw error
                }
            } catch {
                try? cluster.stop(mode: .fast)
                throw error
            }
        }

        struct ModelBench: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "model",
                abstract: "Scoring and training tokens/s of our engine and of PyTorch, ratios, and MFU.",
                discussion: """
                    Runs the default and the large surrogate on a batch of 16 sequences (127-token prompt, \
                    127-token response; scoring computes logits for response positions only), measures the \
                    cblas_sgemm peak in the same process for MFU, then runs \
                    Benchmarks/reference/torch_reference.py on the same shapes if `python3 -c 'import torch'` \
                    works (pip install torch==2.13.0+cpu). Build in release for meaningful numbers:
                      swift build -c release && .build/release/tovd bench model
                    """)

            @Option(help: "Threads for OpenBLAS and PyTorch.") var threads = 2
            @Option(help: "Seconds per measurement.") var seconds = 3.0
            @Flag(help: "Skip the PyTorch comparison.") var noTorch = false

            func run() throws {
                BLASThreads.set(threads)
                print("machine: \(CPUFeatures.summary)")
                let peak = ModelBenchmark.sgemmPeak()
                print(String(format: "cblas_sgemm peak (1536³, %d threads): %.1f GFLOP/s", threads, peak))
                let ours = ModelBenchmark.run(seconds: seconds)
                let torch = noTorch ? [:] : Self.torchResults(threads: threads, seconds: seconds)
                print("")
                print("config   engine   forward tok/s   train tok/s   forward GFLOP/s (MFU)   train GFLOP/s (MFU)")
                for (name, result) in zip(["default", "large"], ours) {
                    print(String(format: "%-8@ tovd     %13.0f   %11.0f   %8.1f (%4.1f%%)         %8.1f (%4.1f%%)", name as NSString,
                                 result.forwardTokensPerSecond, result.trainTokensPerSecond,
                                 result.forwardGFLOPS, 100 * result.forwardGFLOPS / peak, result.trainGFLOPS, 100 * result.trainGFLOPS / peak))
                    if let t = torch[name] {
                        print(String(format: "%-8@ torch    %13.0f   %11.0f", name as NSString, t.forward, t.train))
                        print(String(format: "%-8@ ratio    %12.2f×   %10.2f×   (goals: forward ≥ 1.5×, training ≥ 1.2×, forward MFU ≥ 50%%)",
                                     name as NSString, result.forwardTokensPerSecond / t.forward, result.trainTokensPerSecond / t.train))
                    }
                }
                if torch.isEmpty && !noTorch { print("\n(PyTorch not available: pip install torch==2.13.0+cpu for the ratios)") }
                if let sample = Self.tokenizerSample() {
                    let (train, encode) = ModelBenchmark.tokenizer(sample: sample)
                    print(String(format: "\ntokenizer: 4096-token BPE learned from %.1f MB in %.1f s; encode %.1f MB/s on one core (goal ≥ 5)",
                                 Double(sample.reduce(0) { $0 + $1.count }) / 1e6, train, encode))
                }
            }

            /// ~4 MB of real text from the BIG-bench cache, if it was fetched.
            static func tokenizerSample() -> [[UInt8]]? {
                guard let handle = FileHandle(forReadingAtPath: ".cache/bigbench-ni/all.jsonl"),
                      let data = try? handle.read(upToCount: 4 << 20) else { return nil }
                return data.split(separator: 0x0A).map(Array.init)
            }

            static func torchResults(threads: Int, seconds: Double) -> [String: (forward: Double, train: Double)] {
                guard let run = TorchReference.run(["bench", "--threads", "\(threads)", "--seconds", "\(seconds)"]) else { return [:] }
                var results: [String: (Double, Double)] = [:]
                for line in run.lines {
                    guard let object = line, let name = object["config"] as? String, let f = object["forward_tokens_per_s"] as? Double,
                          let t = object["train_tokens_per_s"] as? Double else { continue }
                    results[name] = (f, t)
                }
                return results
            }
        }

        struct ExportReference: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "export-reference",
                abstract: "Write a small seeded model, a batch and our losses and gradients for torch_reference.py check.",
                discussion: "  tovd bench export-reference /tmp/ref && python3 Benchmarks/reference/torch_reference.py check /tmp/ref")

            @Argument(help: "Output directory.") var directory: String
            @Option(help: "Seed.") var seed: UInt64 = 1

            func run() throws {
                let config = ModelConfig(layers: 2, width: 32, heads: 4, context: 24, vocabSize: 300)
                let model = Model(config: config, seed: seed)
                let examples = [
                    Example(prompt: [1, 2, 3, 4, 5], response: [6, 7, 8]),
                    Example(prompt: Array(10..<40), response: [41, 42, 43, 44]),          // prompt cut from the left
                    Example(prompt: [7], response: Array(100..<140)),                       // response cut from the right
                    Example(prompt: [], response: [50, 51, 52, 53, 54, 55]),
                ]
                try model.exportReference(to: directory, examples: examples)
                print("wrote \(directory): python3 Benchmarks/reference/torch_reference.py check \(directory)")
            }
        }
    }
}
