import ArgumentParser
import Daemon
import Evaluation
import JSONL
import Foundation
import Selection
import Surrogate

extension Tovd.Bench {
    /// The ToV scoring workload without the database: real rows through the worker's own
    /// `LoadedVersion`, against the FLOP limit and a PyTorch scorer of the same weights on the same rows.
    struct ScoreBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "score",
            abstract: "Rows/s of ToV scoring on real rows vs the FLOP limit and a PyTorch scorer of the same weights, with max |Δφ|.",
            discussion: """
                For each --surrogate: a tokenizer learned from the rows, θ0 after --train-steps steps (or \
                --checkpoint), L base checkpoints (θ0 + a few steps per epoch) and L val checkpoints (each \
                base + a few steps on other rows). Then, on --rows real rows (--file, else the BIG-bench \
                cache, else the committed real-text fixture) in batches of --batch-size, with a fresh \
                tokenizer cache each time (tokenization included, as in the daemon):
                  the previous engine (training forward, one stream) on --reference-rows rows;
                  the scoring pass with one stream and OpenBLAS's threads, and with --threads \
                single-threaded streams (the daemon's default);
                  a first scoring (2L passes) and a rescoring (L passes, θ_val only);
                  the FLOP limit: the cblas_sgemm peak measured here ÷ a standard implementation's FLOPs \
                for these packed rows (every layer at every position, causal attention, LM head at the targets);
                  PyTorch (Benchmarks/reference/torch_reference.py score) on exported copies of the same \
                checkpoints and rows, and the max |Δφ| between the engines;
                  where the CPU has AVX-512 BF16, the bf16 scoring path (`tovd run --scoring-precision bf16`): \
                its rows/s, its own kernel's peak, and how far its φ moves: Spearman with fp32 φ and the \
                overlap of the 5 % Score+Random selection (and of score_only) made from each.
                The last line per surrogate is one JSON object. Build in release:
                  swift build -c release && .build/release/tovd bench score --surrogate small,default
                """)

        @Option(help: "Comma-separated: small (2 × 128, context 128, vocab 2048), default (4 × 256, context 256, vocab 4096).")
        var surrogate = "small,default"
        @Option(help: "Rows to score.") var rows = 3000
        @Option(help: "Rows the previous engine scores (it is slow on the default surrogate; 0 skips it).") var referenceRows = 1000
        @Option(help: "JSONL of {\"prompt\",\"response\"} rows (default: .cache/bigbench-ni/all.jsonl, else the test fixture).")
        var file: String?
        @Option(help: "θ0 checkpoint (a tovd checkpoint file) instead of training one.") var checkpoint: String?
        @Option(help: "Scoring epochs L.") var epochs = 2
        @Option(help: "Rows per batch (the daemon's claim size).") var batchSize = 64
        @Option(help: "Threads for OpenBLAS and PyTorch, and scoring streams.") var threads = 2
        @Option(help: "θ0 training steps when no --checkpoint.") var trainSteps = 20
        @Option(help: "Where the checkpoints and rows for PyTorch are written.") var exportDirectory = "/tmp/tovd-bench-score"
        @Flag(help: "Skip the PyTorch comparison.") var noTorch = false
        @Flag(help: "Measure only the previous engine (to profile it: perf record -g tovd bench score --reference-only).") var referenceOnly = false

        static let shapes: [String: ModelConfig] = [
            "small": ModelConfig(layers: 2, width: 128, heads: 4, context: 128, vocabSize: 2048),
            "default": ModelConfig(layers: 4, width: 256, heads: 4, context: 256, vocabSize: 4096),
        ]

        func validate() throws {
            for name in surrogate.split(separator: ",") where Self.shapes[String(name)] == nil {
                throw ValidationError("--surrogate takes small and/or default, comma-separated (got \(name))")
            }
            guard rows >= 1, referenceRows >= 0, epochs >= 1, batchSize >= 1, threads >= 1 else { throw ValidationError("--rows, --epochs, --batch-size and --threads must be positive") }
        }

        func run() throws {
            StandardOutput.lineBuffered()
            BLASThreads.set(threads)
            print("machine: \(CPUFeatures.summary)")
            let (texts, source) = try Self.readRows(file: file, count: rows)
            print("rows: \(texts.count) from \(source)")
            let peak = ModelBenchmark.sgemmPeak()
            print(String(format: "cblas_sgemm peak (1536³, %d threads): %.1f GFLOP/s", threads, peak))
            let bf16Peak = ModelBenchmark.bf16Peak(streams: threads)
            if let bf16Peak {
                print(String(format: "bf16 kernel peak (1536³, %d single-threaded streams): %.1f GFLOP/s (%.2f× sgemm)", threads, bf16Peak, bf16Peak / peak))
            } else {
                print("bf16 scoring path: not available (this CPU does not report avx512_bf16); scoring stays fp32")
            }
            var summaries: [String] = []
            for name in surrogate.split(separator: ",").map(String.init) {
                summaries.append(try measure(name, texts: texts, peak: peak, bf16Peak: bf16Peak))
            }
            for line in summaries { print(line) }
        }

        func measure(_ name: String, texts: [RowText], peak: Double, bf16Peak: Double?) throws -> String {
            let (tokenizer, theta0) = try initialModel(name, texts: texts)
            let config = theta0.config
            print("\n== \(name): \(config.layers) × \(config.width), \(config.heads) heads, context \(config.context), vocab \(config.vocabSize); L = \(epochs)")
            let (base, val) = trajectory(theta0, tokenizer: tokenizer, texts: texts)
            let examples = texts.map { tokenizer.example(prompt: $0.prompt, response: $0.response, context: config.context) }
            let shape = ScoreBenchmark.shape(config, examples)
            let flopsPerPass = examples.reduce(0) { $0 + ScoreBenchmark.standardFlops(config, $1) } / Double(examples.count)
            let limit = peak * 1e9 / (flopsPerPass * Double(2 * epochs))
            print(String(format: "packed rows: %.1f tokens, %.1f targets per row; standard forward %.1f MFLOP per row and pass", shape.tokens, shape.targets, flopsPerPass / 1e6))

            // A fresh tokenizer per measurement: its chunk cache starts cold, as for new rows.
            func version() throws -> LoadedVersion {
                let fresh = try Tokenizer(serialized: tokenizer.serialized())
                let b = base.map { $0.copy() }, v = val.map { $0.copy() }
                for m in b.dropFirst() + v { m.shareActivations(with: b[0]) }   // as ModelCache does
                return try LoadedVersion(modelVersion: 1, baseVersion: 1, tokenizer: fresh, base: b, val: v)
            }
            func timed(_ rows: [RowText], _ body: ([RowText]) throws -> Void) rethrows -> Double {
                let started = ContinuousClock.now
                for start in stride(from: 0, to: rows.count, by: batchSize) {
                    try body(Array(rows[start..<min(start + batchSize, rows.count)]))
                }
                return Double(rows.count) / (ContinuousClock.now - started).seconds
            }

            // The previous engine: tokenized per call (twice per batch), training forward, OpenBLAS threads.
            let referenceTexts = Array(texts.prefix(referenceRows))
            let referenceTokenizer = try Tokenizer(serialized: tokenizer.serialized())
            let before = referenceTexts.isEmpty ? Double.nan : timed(referenceTexts) { rows in
                for models in [base, val] {
                    let batch = rows.map { referenceTokenizer.example(prompt: $0.prompt, response: $0.response) }
                    for m in models { _ = m.referenceLosses(batch) }
                }
            }
            if referenceOnly {
                print(String(format: "tovd before (training forward, 1 stream): %.1f rows/s, %.1f %% of the FLOP limit", before, 100 * before / limit))
                return #"{"surrogate": "\#(name)", "reference_rows_per_s": \#(before)}"#
            }
            // φ of every row (and its response length, for the selection) from a first scoring.
            func firstScoring(_ options: Model.ScoringOptions) throws -> (rowsPerSecond: Double, phi: [Double], lengths: [Int]) {
                let loaded = try version()
                var scores: [Double] = [], lengths: [Int] = []
                let rate = try timed(texts) { rows in
                    let b = try loaded.baseLosses(rows, options: options)
                    let v = try loaded.valLosses(rows, options: options)
                    for (record, vals) in zip(b, v) {
                        scores.append(zip(record.losses, vals).reduce(0) { $0 + Double($1.0 - $1.1) } / Double(epochs))
                        lengths.append(record.tokens)
                    }
                }
                return (rate, scores, lengths)
            }
            func rescoring(_ options: Model.ScoringOptions) throws -> Double {
                let rescorer = try version()
                return try timed(texts) { rows in _ = try rescorer.valLosses(rows, options: options) }
            }
            var ours: [Int: Double] = [:]
            var phi: [Double] = [], lengths: [Int] = []
            for streams in Set([1, threads]).sorted() {
                let run = try firstScoring(.init(streams: streams))
                ours[streams] = run.rowsPerSecond
                if streams == threads { (phi, lengths) = (run.phi, run.lengths) }
            }
            let rescore = try rescoring(.init(streams: threads))
            let first = ours[threads]!
            var bf16: (first: Double, rescore: Double, spearman: Double, overlap: Double, scoreOverlap: Double)?
            if bf16Peak != nil {
                let options = Model.ScoringOptions(streams: threads, precision: .bf16)
                let run = try firstScoring(options)
                let overlaps = [Policy.scoreRandom, .scoreOnly].map { policy in
                    Self.selectionOverlap(phi, run.phi, lengths: lengths, policy: policy)
                }
                bf16 = (run.rowsPerSecond, try rescoring(options), RankCorrelation.spearman(phi, run.phi), overlaps[0], overlaps[1])
            }

            var torch: (first: Double, rescore: Double, maxDiff: Double, version: String)?
            if !noTorch {
                let directory = "\(exportDirectory)/\(name)"
                try ScoreBenchmark.exportForTorch(to: directory, base: base, val: val, examples: examples, batchSize: batchSize)
                torch = runTorch(directory: directory, phi: phi)
            }

            print("")
            print("engine                                   first scoring rows/s   rescoring rows/s   FLOP-limit fraction")
            print(String(format: "tovd before (training forward, 1 stream)  %10.1f                                %5.1f %%", before, 100 * before / limit))
            if threads != 1, let one = ours[1] {
                print(String(format: "tovd, 1 stream × %d BLAS threads           %10.1f                                %5.1f %%", threads, one, 100 * one / limit))
            }
            print(String(format: "tovd, %d streams × 1 BLAS thread           %10.1f          %10.1f            %5.1f %%", threads, first, rescore, 100 * first / limit))
            if let bf16 {
                print(String(format: "tovd bf16, %d streams (default)            %10.1f          %10.1f            %5.1f %% (%.1f %% of the bf16 kernel's limit)",
                             threads, bf16.first, bf16.rescore, 100 * bf16.first / limit, 100 * bf16.first / (limit * bf16Peak! / peak)))
            }
            if let torch {
                print(String(format: "PyTorch %@ (same weights, same rows) %10.1f          %10.1f            %5.1f %%",
                             torch.version as NSString, torch.first, torch.rescore, 100 * torch.first / limit))
                print(String(format: "ratio tovd / PyTorch                      %10.2f×         %10.2f×", first / torch.first, rescore / torch.rescore))
                if let bf16 {
                    print(String(format: "ratio tovd bf16 / PyTorch fp32            %10.2f×         %10.2f×", bf16.first / torch.first, bf16.rescore / torch.rescore))
                }
                print(String(format: "max |Δφ| tovd vs PyTorch over %d rows: %.2e (goal ≤ 1e-4)", texts.count, torch.maxDiff))
            } else if !noTorch {
                print("(PyTorch not available: pip install torch==2.13.0+cpu for the ratio and |Δφ|)")
            }
            print(String(format: "FLOP limit (peak ÷ standard FLOPs per row × 2L): %.1f rows/s; scoring pass vs before: %.2f×", limit, first / before))
            if let bf16 {
                print(String(format: "bf16 vs fp32 φ over %d rows: Spearman %.4f (goal ≥ 0.99); 5 %% Score+Random selection overlap %.1f %% (goal ≥ 95 %%), score_only selection %.1f %%",
                             texts.count, bf16.spearman, 100 * bf16.overlap, 100 * bf16.scoreOverlap))
            } else {
                print("bf16: not available on this CPU (needs AVX-512 BF16)")
            }
            var json: [String: Any] = [
                "surrogate": name, "tovd_rows_per_s": first, "tovd_rescore_rows_per_s": rescore,
                "flop_limit_rows_per_s": limit, "limit_fraction": first / limit,
            ]
            json["torch_rows_per_s"] = torch.map { $0.first } ?? NSNull()
            json["ratio"] = torch.map { first / $0.first } ?? NSNull()
            json["max_abs_phi_diff"] = torch.map { $0.maxDiff } ?? NSNull()
            if let bf16 {
                var entry: [String: Any] = [
                    "rows_per_s": bf16.first, "rescore_rows_per_s": bf16.rescore, "limit_fraction": bf16.first / limit,
                    "spearman": bf16.spearman, "selection_overlap": bf16.overlap, "score_only_overlap": bf16.scoreOverlap,
                ]
                entry["ratio"] = torch.map { bf16.first / $0.first } ?? NSNull()
                json["bf16"] = entry
            } else {
                json["bf16"] = "not available"
            }
            return String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), as: UTF8.self)
        }

        /// |S_a ∩ S_b| / |S_a| for the daemon's default selection (5 %, 10 bins, seed 0) made from two φ
        /// vectors of the same rows.
        static func selectionOverlap(_ a: [Double], _ b: [Double], lengths: [Int], policy: Policy) -> Double {
            let settings = SelectionSettings(policy: policy)
            func chosen(_ phi: [Double]) -> Set<Int64> {
                Set(select(phi.indices.map { ScoredRow(id: Int64($0), score: phi[$0], length: lengths[$0]) }, settings: settings).ids)
            }
            let sa = chosen(a), sb = chosen(b)
            return Double(sa.intersection(sb).count) / Double(max(sa.count, 1))
        }

        func runTorch(directory: String, phi: [Double]) -> (first: Double, rescore: Double, maxDiff: Double, version: String)? {
            guard let run = TorchReference.run(["score", directory, "--threads", "\(threads)"]), run.status == 0,
                  let last = run.lines.last, let object = last,
                  let first = object["first_rows_per_s"] as? Double, let rescore = object["rescore_rows_per_s"] as? Double,
                  let theirs = object["phi"] as? [Double], theirs.count == phi.count else { return nil }
            let maxDiff = zip(phi, theirs).reduce(0.0) { max($0, abs($1.0 - $1.1)) }
            return (first, rescore, maxDiff, object["torch"] as? String ?? "?")
        }

        /// Rows from `file`, the BIG-bench cache or the committed fixture, in a fixed shuffle (a
        /// sample of every subtask rather than the first ones); repeated when there are too few.
        static func readRows(file: String?, count: Int) throws -> ([RowText], String) {
            let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("Tests/IntegrationTests/Fixtures/real_text.jsonl").path
            let path = file ?? [".cache/bigbench-ni/all.jsonl", fixture].first { FileManager.default.fileExists(atPath: $0) }
            guard let path, FileManager.default.fileExists(atPath: path) else {
                throw CLIError("no rows: pass --file or run `tovd data fetch bigbench-ni`")
            }
            var distinct: [RowText] = []
            for case .success(let example) in try JSONLReader(url: URL(fileURLWithPath: path)) {
                distinct.append(RowText(id: Int64(distinct.count), prompt: Array(example.prompt.utf8), response: Array(example.response.utf8)))
            }
            guard !distinct.isEmpty else { throw CLIError("\(path) holds no rows") }
            var g = SplitMix64(seed: 15)
            distinct.shuffle(using: &g)
            let picked = (0..<count).map { distinct[$0 % distinct.count] }
            let note = distinct.count < count ? " (\(distinct.count) distinct rows, repeated)" : ""
            return (picked, path + note)
        }

        func initialModel(_ name: String, texts: [RowText]) throws -> (Tokenizer, Model) {
            if let checkpoint {
                let loaded = try SurrogateCheckpoint.read(from: checkpoint)
                return (loaded.tokenizer, loaded.model)
            }
            let config = Self.shapes[name]!
            var sample: [[UInt8]] = []
            var bytes = 0
            for row in texts where bytes < 2 << 20 {
                sample.append(row.prompt + [0x0A] + row.response)
                bytes += row.prompt.count + row.response.count
            }
            let tokenizer = Tokenizer.train(sample: sample, vocabSize: config.vocabSize)
            let model = Model(config: config, seed: 1)
            train(model, on: texts.prefix(512).map { tokenizer.example(prompt: $0.prompt, response: $0.response, context: config.context) },
                  steps: trainSteps, seed: 1)
            return (tokenizer, model)
        }

        /// θ_bas^l = θ_bas^(l−1) + a few steps on one slice of the rows, θ_val^l = θ_bas^l + a few
        /// steps on another: weights that differ, so φ is not trivially zero.
        func trajectory(_ theta0: Model, tokenizer: Tokenizer, texts: [RowText]) -> (base: [Model], val: [Model]) {
            let context = theta0.config.context
            let u = texts.prefix(256).map { tokenizer.example(prompt: $0.prompt, response: $0.response, context: context) }
            let z = texts.suffix(128).map { tokenizer.example(prompt: $0.prompt, response: $0.response, context: context) }
            var base: [Model] = [], val: [Model] = []
            var current = theta0
            for l in 0..<epochs {
                current = current.copy()
                train(current, on: u, steps: 3, seed: UInt64(10 + l))
                base.append(current)
                let v = current.copy()
                train(v, on: z, steps: 3, seed: UInt64(20 + l))
                val.append(v)
            }
            return (base, val)
        }

        func train(_ model: Model, on examples: [Example], steps: Int, seed: UInt64) {
            var options = TrainingOptions()
            options.epochs = 100
            options.maxSteps = steps
            options.learningRate = 1e-3
            options.seed = seed
            model.train(on: examples, options: options, progress: nil)
        }
    }
}
