import ArgumentParser
import Foundation
import Selection
import Surrogate
import ToVPipeline

extension Tovd.Bench {
    /// The daemon's training workloads on real rows: tovd and PyTorch on the same weights, batches and
    /// shapes, against the FLOP limit, in one run.
    struct TrainBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train",
            abstract: "Training tokens/s and steps/s of θ0 pretraining, a base epoch and a θ_val pass vs PyTorch on the same rows, and the FLOP limit.",
            discussion: """
                For each --surrogate: a tokenizer learned from the rows, seeded initial weights, and the \
                first --steps steps of each workload exactly as the daemon takes them (default settings, \
                4,096-token batches):
                  pretrain: θ0's bootstrap pretraining on U (deduplicated next-token windows, warmup + cosine);
                  base: an epoch of θ_bas on U (prompt → response rows, constant η);
                  val: θ_val's pass on Z_val (other rows, constant ε).
                U is the first --u-size rows (--file, else the BIG-bench cache, else the committed real-text \
                fixture), Z_val the next --zval-size. Each workload starts from the same weights with a \
                fresh optimizer in both engines. --repeats rounds, each timing tovd then PyTorch \
                (Benchmarks/reference/torch_reference.py train, --threads threads, each batch padded to its \
                longest row, SDPA causal, LM head at the targets); the medians, their spread and the median \
                of the per-round ratios are printed, with the FLOP limit: the cblas_sgemm peak (the best of \
                a measurement at the start and one after each round) ÷ a standard implementation's training FLOPs (3× the forward: every layer at every \
                position, causal attention, LM head at the targets). The last line per surrogate is one \
                JSON object. --precision fp32,bf16 times tovd's opt-in bf16 training too (where the CPU has \
                AVX-512 BF16), side by side in each round, with its step losses against PyTorch's and fp32's; \
                with --pipeline-pool N it also runs the daemon's whole ToV pipeline (bootstrap θ0 on |U| = N/2 \
                of the first N rows, L epochs, Method A, the rest scored in fp32 against Z_val) once per \
                precision, and prints its wall time and how far bf16's φ and 5 % Score+Random selection are \
                from fp32's. Build in release:
                  swift build -c release && .build/release/tovd bench train --surrogate small,default
                """)

        @Option(help: "Comma-separated: small (2 × 128, context 128, vocab 2048), default (4 × 256, context 256, vocab 4096).")
        var surrogate = "small,default"
        @Option(help: "Comma-separated workloads: pretrain, base, val.") var workloads = "pretrain,base,val"
        @Option(help: "Training steps timed per workload and round.") var steps = 8
        @Option(help: "Rounds (tovd, then PyTorch, each round).") var repeats = 3
        @Option(help: "Rows of U (the daemon's u_size).") var uSize = 4096
        @Option(help: "Rows of Z_val.") var zvalSize = 512
        @Option(help: "JSONL of {\"prompt\",\"response\"} rows (default: .cache/bigbench-ni/all.jsonl, else the test fixture).")
        var file: String?
        @Option(help: "Threads for OpenBLAS and PyTorch.") var threads = 2
        @Option(help: "Where the weights and batches for PyTorch are written.") var exportDirectory = "/tmp/tovd-bench-train"
        @Flag(help: "Skip the PyTorch comparison.") var noTorch = false
        @Option(help: "Comma-separated training precisions timed for tovd: fp32, bf16 (bf16 needs AVX-512 BF16).")
        var precision = "fp32"
        @Option(help: "Rows of the ToV pipeline run per --precision (0: none; at most --u-size).") var pipelinePool = 0

        var precisions: [TrainingPrecision] { precision.split(separator: ",").compactMap { TrainingPrecision(rawValue: String($0)) } }

        static let workloadNames = ["pretrain", "base", "val"]

        func validate() throws {
            for name in surrogate.split(separator: ",") where ScoreBench.shapes[String(name)] == nil {
                throw ValidationError("--surrogate takes small and/or default, comma-separated (got \(name))")
            }
            for name in workloads.split(separator: ",") where !Self.workloadNames.contains(String(name)) {
                throw ValidationError("--workloads takes pretrain, base and/or val, comma-separated (got \(name))")
            }
            for name in precision.split(separator: ",") where TrainingPrecision(rawValue: String(name)) == nil {
                throw ValidationError("--precision takes fp32 and/or bf16, comma-separated (got \(name))")
            }
            guard !precisions.isEmpty else { throw ValidationError("--precision takes fp32 and/or bf16, comma-separated") }
            if precisions.contains(.bf16), !ScoringPrecision.isAvailable(.bf16) {
                throw ValidationError("--precision bf16 needs a CPU with AVX-512 BF16 (/proc/cpuinfo: avx512_bf16); this one trains in fp32 only")
            }
            guard pipelinePool == 0 || (pipelinePool >= 4 && pipelinePool <= uSize) else {
                throw ValidationError("--pipeline-pool takes 0 (no pipeline run) or 4 to --u-size (\(uSize)) rows")
            }
            guard steps >= 1, repeats >= 1, uSize >= 1, zvalSize >= 1, threads >= 1 else {
                throw ValidationError("--steps, --repeats, --u-size, --zval-size and --threads must be positive")
            }
        }

        func run() throws {
            StandardOutput.lineBuffered()
            BLASThreads.set(threads)
            print("machine: \(CPUFeatures.summary)")
            print("load average at start: \(ProcessStats.loadAverage())")
            let (texts, source) = try ScoreBench.readRows(file: file, count: uSize + zvalSize)
            print("rows: U \(uSize) + Z_val \(zvalSize) from \(source)")
            let peak = ModelBenchmark.sgemmPeak()
            print(String(format: "cblas_sgemm peak (1536³, %d threads): %.1f GFLOP/s", threads, peak))
            var summaries: [String] = []
            for name in surrogate.split(separator: ",").map(String.init) {
                summaries.append(try measure(name, u: Array(texts.prefix(uSize)), zval: Array(texts.suffix(zvalSize)), peak: peak))
                if pipelinePool > 0 {
                    summaries.append(try comparePipelines(name, rows: Array(texts.prefix(pipelinePool)), zval: Array(texts.suffix(zvalSize))))
                }
            }
            print("load average at end: \(ProcessStats.loadAverage())")
            for line in summaries { print(line) }
        }

        struct Timing {
            var tovd: [TrainingPrecision: [Double]] = [:]    // seconds per round
            var torch: [Double] = []
            var tovdLosses: [TrainingPrecision: [Float]] = [:]
            var torchLosses: [Double] = []
        }

        func measure(_ name: String, u: [RowText], zval: [RowText], peak startPeak: Double) throws -> String {
            let config = ScoreBench.shapes[name]!
            print("\n== \(name): \(config.layers) × \(config.width), \(config.heads) heads, context \(config.context), vocab \(config.vocabSize)")
            let settings = TrajectorySettings.daemonDefaults
            let tokenizer = BootstrapPretraining.tokenizer(u.map { (source: nil, prompt: $0.prompt, response: $0.response) }, vocabSize: config.vocabSize)
            let model = Model(config: config, seed: 1)
            let parameters = model.parameters
            let pretraining = settings.bootstrapPretraining
            var chosen: [TrainBenchmark.Workload] = []
            for kind in workloads.split(separator: ",").map(String.init) {
                switch kind {
                case "pretrain":
                    let documents = pretraining.documents(u.map { (source: nil, prompt: $0.prompt, response: $0.response) }, tokenizer: tokenizer, context: config.context)
                    chosen.append(.init(name: kind, model: model, examples: documents, options: pretraining.options, steps: steps))
                case "base":
                    chosen.append(.init(name: kind, model: model, examples: Trajectory.trainingExamples(u, tokenizer: tokenizer),
                                        options: settings.baseEpoch(1), steps: steps))
                default:
                    chosen.append(.init(name: kind, model: model, examples: Trajectory.trainingExamples(zval, tokenizer: tokenizer),
                                        options: settings.valPass(1), steps: steps))
                }
            }
            let directory = "\(exportDirectory)/\(name)"
            if !noTorch { try TrainBenchmark.exportForTorch(to: directory, config: config, parameters: parameters, workloads: chosen) }

            // The peak again after every round, the best one kept: on a shared box a single measurement
            // taken while another process ran would put the limit far below the machine's.
            var peak = startPeak
            var timings = [String: Timing]()
            var torchVersion: String?
            for round in 1...repeats {
                for workload in chosen {
                    for precision in precisions {
                        var timed = workload
                        timed.options.precision = precision
                        let (seconds, losses) = try TrainBenchmark.time(config, parameters: parameters, timed)
                        timings[workload.name, default: Timing()].tovd[precision, default: []].append(seconds)
                        timings[workload.name]!.tovdLosses[precision] = losses
                    }
                }
                if !noTorch, let results = runTorch(directory: directory, workloads: chosen.map(\.name)) {
                    for result in results {
                        timings[result.workload, default: Timing()].torch.append(result.seconds)
                        timings[result.workload]!.torchLosses = result.losses
                        torchVersion = result.version
                    }
                }
                let line = chosen.map { w in
                    let t = timings[w.name]!
                    let ours = precisions.map { String(format: "%@ %.2f s", Self.engine($0), t.tovd[$0]!.last!) }.joined(separator: " ")
                    return "\(w.name) \(ours)" + (t.torch.count == round ? String(format: " torch %.2f s", t.torch.last!) : "")
                }
                print("round \(round)/\(repeats): " + line.joined(separator: ", ") + "; load average \(ProcessStats.loadAverage())")
                peak = max(peak, ModelBenchmark.sgemmPeak())
            }
            print(String(format: "cblas_sgemm peak, best of the start and each round: %.1f GFLOP/s", peak))

            print("")
            print("workload   steps  tokens/step  engine     tokens/s (median, min–max)     steps/s   FLOP-limit fraction")
            var json: [String: Any] = ["surrogate": name, "peak_gflops": peak, "threads": threads, "repeats": repeats]
            var perWorkload: [String: Any] = [:]
            for workload in chosen {
                let t = timings[workload.name]!
                let tokens = workload.batches.reduce(0) { $0 + TrainBenchmark.tokens(config, $1) }
                let flops = workload.batches.reduce(0) { $0 + TrainBenchmark.standardFlops(config, $1) }
                let limit = peak * 1e9 * Double(tokens) / flops   // tokens/s at the peak
                let stepCount = workload.batches.count
                func row(_ engine: String, _ seconds: [Double]) -> Double {
                    let rates = seconds.map { Double(tokens) / $0 }.sorted()
                    let median = Self.median(rates)
                    print(String(format: "%-9@ %6d  %11.0f  %-9@ %9.0f (%.0f–%.0f)   %17.2f   %5.1f %%", workload.name as NSString, stepCount,
                                 Double(tokens) / Double(stepCount), engine as NSString, median, rates.first!, rates.last!,
                                 median * Double(stepCount) / Double(tokens), 100 * median / limit))
                    return median
                }
                var entry: [String: Any] = ["steps": stepCount, "tokens_per_step": Double(tokens) / Double(stepCount),
                                            "flop_limit_tokens_per_s": limit]
                // fp32 keeps the keys it always had; bf16's carry a prefix.
                func key(_ precision: TrainingPrecision, _ name: String) -> String { precision == .fp32 ? name : "bf16_" + name }
                for precision in precisions {
                    let ours = row(Self.engine(precision), t.tovd[precision]!)
                    entry[key(precision, "tovd_tokens_per_s")] = ours
                    entry[key(precision, "tovd_limit_fraction")] = ours / limit
                }
                if t.torch.isEmpty {
                    print(String(format: "%-9@ FLOP limit %.0f tokens/s", workload.name as NSString, limit))
                } else {
                    entry["torch_tokens_per_s"] = row("PyTorch", t.torch)
                    for precision in precisions {
                        let ratio = Self.ratios(t.tovd[precision]!, against: t.torch)
                        let gap = Self.lossGap(t.tovdLosses[precision]!.map(Double.init), t.torchLosses)
                        print(String(format: "%-9@ ratio %@ / PyTorch: %.2f× (median of %d rounds; %.2f–%.2f); FLOP limit %.0f tokens/s; |Δloss| step 1 %.1e, max over %d steps %.1e",
                                     workload.name as NSString, Self.engine(precision) as NSString, ratio.median, ratio.count, ratio.min, ratio.max, limit,
                                     gap.first, gap.count, gap.max))
                        entry[key(precision, "ratio")] = ratio.median
                        entry[key(precision, "ratio_min")] = ratio.min
                        entry[key(precision, "ratio_max")] = ratio.max
                        entry[key(precision, "max_abs_loss_diff")] = gap.max
                    }
                }
                if let fp32 = t.tovd[.fp32], let bf16 = t.tovd[.bf16] {
                    // Same-round ratios, as against PyTorch; the loss gap is what bf16 does to the training itself.
                    let speedup = Self.ratios(bf16, against: fp32)
                    let gap = Self.lossGap(t.tovdLosses[.bf16]!.map(Double.init), t.tovdLosses[.fp32]!.map(Double.init))
                    print(String(format: "%-9@ bf16 / fp32: %.2f× (median of %d rounds; %.2f–%.2f); |Δloss| bf16 vs fp32 step 1 %.1e, max over %d steps %.1e",
                                 workload.name as NSString, speedup.median, speedup.count, speedup.min, speedup.max,
                                 gap.first, gap.count, gap.max))
                    entry["bf16_vs_fp32"] = speedup.median
                    entry["bf16_vs_fp32_max_abs_loss_diff"] = gap.max
                }
                perWorkload[workload.name] = entry
            }
            if let torchVersion { print("PyTorch \(torchVersion), \(threads) threads") } else if !noTorch {
                print("(PyTorch not available: pip install torch==2.13.0+cpu for the ratios)")
            }
            json["workloads"] = perWorkload
            return String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), as: UTF8.self)
        }

        /// The daemon's ToV pipeline on `rows` once per precision (the scoring pass in fp32 each time, so
        /// only training differs): wall time, and each φ and selection against fp32's.
        func comparePipelines(_ name: String, rows: [RowText], zval: [RowText]) throws -> String {
            let config = ScoreBench.shapes[name]!
            // A file with fewer distinct rows than asked repeats them: the pipeline needs distinct ids.
            var seen = Set<Int64>()
            let pool = rows.filter { seen.insert($0.id).inserted }
            let zval = zval.filter { !seen.contains($0.id) }
            let defaults = TrajectorySettings.daemonDefaults
            print("\n-- \(name): the ToV pipeline on \(pool.count) rows (|U| \(pool.count / 2), Z_val \(zval.count), bootstrap θ0 of \(defaults.pretrainSteps) steps, L = \(defaults.epochs), Method A, φ scored in fp32)")
            var runs: [TrainingPrecision: (seconds: Double, phi: [Double], lengths: [Int])] = [:]
            for precision in precisions {
                var settings = defaults
                settings.trainingPrecision = precision
                var pipeline = PipelineRun(model: config, settings: settings, uSize: pool.count / 2, method: .A, scoreFunction: .improvement)
                pipeline.scoring = .init(precision: .fp32)
                let started = ContinuousClock.now
                let result = pipeline.run(pool: pool, zval: zval, theta0: .bootstrap)
                let seconds = (ContinuousClock.now - started).seconds
                runs[precision] = (seconds, result.rows.map(\.score), result.rows.map(\.length))
                print(String(format: "%@: %.1f s (θ0 %.1f s, base trajectory %.1f s), %d rows scored",
                             Self.engine(precision) as NSString, seconds, result.theta0Seconds, result.baseTrainingSeconds, result.rows.count))
            }
            var json: [String: Any] = ["surrogate": name, "pipeline_rows": pool.count, "zval_rows": zval.count]
            for (precision, run) in runs { json[precision.rawValue + "_seconds"] = run.seconds }
            if let fp32 = runs[.fp32], let bf16 = runs[.bf16] {
                let spearman = RankCorrelation.spearman(fp32.phi, bf16.phi)
                let overlap = ScoreBench.selectionOverlap(fp32.phi, bf16.phi, lengths: fp32.lengths, policy: .scoreRandom)
                let scoreOverlap = ScoreBench.selectionOverlap(fp32.phi, bf16.phi, lengths: fp32.lengths, policy: .scoreOnly)
                print(String(format: "bf16 training vs fp32: %.2f× the pipeline's speed; φ Spearman %.4f over %d rows; 5 %% Score+Random selection overlap %.1f %%, score_only %.1f %%",
                             fp32.seconds / bf16.seconds, spearman, fp32.phi.count, 100 * overlap, 100 * scoreOverlap))
                json["bf16_speedup"] = fp32.seconds / bf16.seconds
                json["phi_spearman"] = spearman
                json["selection_overlap"] = overlap
                json["score_only_overlap"] = scoreOverlap
            }
            return String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), as: UTF8.self)
        }

        /// Per-round speed ratios of `fast` against `slow` (seconds of the same rounds): median, range, rounds.
        static func ratios(_ fast: [Double], against slow: [Double]) -> (median: Double, min: Double, max: Double, count: Int) {
            let ratios = zip(fast, slow).map { $0.1 / $0.0 }.sorted()
            return (median(ratios), ratios.first ?? .nan, ratios.last ?? .nan, ratios.count)
        }

        /// |Δ| between two engines' step losses: at step 1 and the largest, over `count` steps.
        static func lossGap(_ a: [Double], _ b: [Double]) -> (first: Double, max: Double, count: Int) {
            let gaps = zip(a, b).map { abs($0.0 - $0.1) }
            return (gaps.first ?? .nan, gaps.max() ?? .nan, gaps.count)
        }

        static func engine(_ precision: TrainingPrecision) -> String { precision == .fp32 ? "tovd" : "tovd bf16" }

        static func median(_ sorted: [Double]) -> Double {
            let n = sorted.count
            return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        }

        /// One round of `torch_reference.py train` on the export: per workload, the seconds and losses.
        func runTorch(directory: String, workloads: [String]) -> [(workload: String, seconds: Double, losses: [Double], version: String)]? {
            guard let run = TorchReference.run(["train", directory, "--threads", "\(threads)", "--workloads", workloads.joined(separator: ",")]),
                  run.status == 0 else { return nil }
            var results: [(String, Double, [Double], String)] = []
            for line in run.lines {
                guard let object = line, let workload = object["workload"] as? String, let seconds = (object["seconds"] as? [Double])?.first,
                      let losses = object["losses"] as? [Double] else { continue }
                results.append((workload, seconds, losses, object["torch"] as? String ?? "?"))
            }
            return results.count == workloads.count ? results : nil
        }
    }
}
