import ArgumentParser
import Evaluation
import Foundation
import Selection
import Surrogate
import ToVPipeline

extension Tovd {
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Does ToV selection add to Z_val for a target? Reduced-LR proxy fine-tuning on real data, held out by dataset.",
            discussion: """
                Holds the target subtask out by source dataset (no sibling subtask in the pool or θ0's text) and \
                by shared context (Z_val, test and in-pool target rows never share a passage), builds the pool \
                from the other datasets (plus a --target-share of the target's own rows), pretrains θ0 on \
                de-duplicated rows outside the pool (cached in --cache), scores the pool with the daemon's own ToV \
                pipeline from each --theta0 (the pretrained θ0 and the daemon's bootstrap θ0, side by side) and \
                with the baselines (less_adam, dsir, random_length_matched, random), and fine-tunes each --proxy \
                (its own size and --proxy-context) on selection + Z_val, Z_val alone and the selection alone at \
                each reduced LR (arXiv 2512.24503) over --seeds seeds; every θ0's selections go through the same \
                arms, proxies and LRs, and the report says which θ0 made each. The report gives every comparison \
                per LR and tuned with a 95 % paired interval, the headline under a rule fixed in code, the measured \
                context overlap (0), and each method's cost. Writes report.json (the one format), options.json and \
                runs.jsonl to --output and prints the Markdown; rerunning with the same --output and settings \
                resumes, other settings are refused. Ctrl-C while θ0 pretrains saves it so the rerun goes on.
                  tovd data fetch bigbench-ni
                  tovd evaluate --target subtask061_ropes_answer_generation --output eval/ropes
                  tovd evaluate --render eval/ropes/report.json --format html > ropes.html
                With --targets A,B it trains no proxy: it scores one pool for every target at once, as a \
                daemon with several targets does (one U, θ0 and base trajectory, a θ_val per target), and for \
                each target alone, as separate schemas would, and reports per seed whether each target's φ and \
                selection are the same and what each way cost (shared-scoring.json in --output):
                  tovd evaluate --theta0 bootstrap --pool 10000 --seeds 3 --output eval/two \\
                  --targets subtask028_drop_answer_generation,subtask061_ropes_answer_generation
                With --zval-signal SIZES it trains no proxy either: it measures the Z_val signal `tovd status` shows \
                (how Z_val's halves agree on the pool, help each other's rows, and the verdict; docs/selection.md) \
                for the first n rows of the target's Z_val at \
                each size n, clean and with a share of them from other datasets, and how far each one's φ is from \
                the largest clean Z_val's φ (zval-signal.json in --output):
                  tovd evaluate --theta0 bootstrap --pool 10000 --seeds 5 --output eval/signal-drop \
                  --target subtask028_drop_answer_generation --zval-signal 25,50,100,200
                """)

        @Option(help: "Target subtask (a JSONL file name in --data without .jsonl).") var target: String?
        @Option(help: "Comma-separated target subtasks to score one pool for at once and check against each alone (no proxies; see above).")
        var targets: String?
        @Option(help: "Directory of per-subtask JSONL files.") var data = ".cache/bigbench-ni/jsonl"
        @Option(name: .shortAndLong, help: "Output directory (resumable; refused when it holds results of other settings).") var output: String?
        @Option(help: "Render an existing report.json instead of running (to stdout, in --format).") var render: String?
        @Option(help: "md or html (with --render).") var format = "md"
        @Option(help: "Cache of pretrained θ0s, keyed by everything that shapes them (shared by runs).") var cache = ".cache/tovd-eval"
        @Option(help: "Pool rows (from the other subtasks).") var pool = 20_000
        @Option(help: "Z_val rows (from the target).") var zval = 200
        @Option(help: "Share of Z_val replaced by rows of other datasets, outside the pool and θ0's text (a noisy Z_val, e.g. 0.25).")
        var zvalOffTarget = 0.0
        @Option(help: "Comma-separated Z_val sizes, e.g. 25,50,100,200: trains no proxy, measures the daemon's Z_val signal for each size clean and with --zval-off-target of it off-target (0.25 when not given; see above).")
        var zvalSignal: String?
        @Option(help: "Held-out target test rows.") var testRows = 1000
        @Option(help: "Rows θ0 is pretrained on (outside the pool; their repeated prompt lines are kept once).") var pretrainRows = 40_000
        @Option(help: "Share of the pool made of the target subtask's own rows, held out by context (0: transfer setting, e.g. 0.03).") var targetShare = 0.0
        @Option(help: "Comma-separated arms: with_zval (selection + Z_val, and Z_val alone: the primary comparison), alone.")
        var arms = EvaluationArm.allCases.map(\.rawValue).joined(separator: ",")
        @Option(help: "Budget as a fraction of the scored pool.") var budget = 0.05
        @Option(help: "Comma-separated proxy learning rates (every one is reported, and the tuned comparison).") var lrs = "3e-4,1e-4,3e-5"
        @Option(help: "Seeds (U sample, trajectories, selections, one random-baseline draw each, proxy data order).") var seeds = 5
        @Option(help: "Comma-separated policies: score_random, score_random@S (score_random with share S of the budget by score, e.g. score_random@0.25), score_only, score_only_unbinned, uncertainty, random, less (LESS-like sign feature), less_adam (LESS's Adam-preconditioned gradients), dsir, random_length_matched; issue 27's candidates: crossfit, crossfit@K (score_random from cross-fitted ToV with K folds: each fold's rows nudge θ_bas after a pass over the other folds; 2 folds cost plain ToV's passes per row), the daemon's score_dsir (ToV's score half, the rest by n-gram importance, Z_val's words against U's, instead of at random), and score_random+diverse, score_dsir+diverse, score_only+diverse (the score half with a quota per cluster of similar text, MinHash of word 5-grams: one cluster takes at most a tenth of a length bin's places); oracle (the pool's rows of the target's dataset: the gap a selection could close).")
        var policies = EvaluationOptions.defaultPolicies.map(\.rawValue).joined(separator: ",")
        @Option(help: "L, scoring epochs.") var epochs = 2
        @Option(help: "A or B.") var method = "A"
        @Option(help: "improvement, abs or relu.") var scoreFn = "improvement"
        @Option(help: "|U|.") var uSize = 2048
        @Option(help: "Surrogate layers.") var layers = 2
        @Option(help: "Surrogate width.") var width = 128
        @Option(help: "Surrogate heads.") var heads = 4
        @Option(help: "Surrogate context.") var context = 128
        @Option(help: "Tokenizer vocabulary.") var vocab = 2048
        @Option(help: "A proxy shape LAYERSxWIDTH fine-tuned on every selection (repeatable; default 2x128), e.g. --proxy 2x128 --proxy 4x256.")
        var proxy: [String] = []
        @Option(help: "Proxy context in tokens (≥ 256 reads the whole prompt), or p95: the target's 95th-percentile row length.")
        var proxyContext = "256"
        @Option(help: "θ0 pretraining: most optimizer steps (the CPU budget).") var pretrainSteps = Theta0Recipe().maxSteps
        @Option(help: "θ0 pretraining: peak learning rate (warmup + cosine).") var pretrainLr = Theta0Recipe().learningRate
        @Option(help: "θ0 pretraining: held-out checks without a new best before stopping.") var pretrainPatience = Theta0Recipe().patience
        @Option(help: "θ0 pretraining: steps between held-out checks.") var pretrainEvalEvery = Theta0Recipe().evaluateEvery
        @Option(help: "Comma-separated θ0s the ToV policies select from, side by side: pretrained (θ0 pretrained outside the pool, the --pretrain-* options), bootstrap (the daemon's default: pretrained on U itself), imported (--theta0-file), pretrained-scoring (the pretrained θ0 in the scoring layout, as tovd pretrain makes it), and the candidate bootstraps bootstrap-4x (4 × the steps on U), bootstrap-pool (on the whole pool) and bootstrap-pool-4x. The first keeps the plain policy names; the others' runs are named \"<policy> (<θ0> θ0)\".")
        var theta0 = EvaluationOptions.defaultScoringTheta0s.map(\.rawValue).joined(separator: ",")
        @Option(help: ArgumentHelp("A θ0 checkpoint (e.g. from tovd pretrain) to select from as the daemon would after `tovd base import`; adds imported to --theta0.",
            discussion: "Make it from a corpus without the pool's rows and the target's dataset, or it scores rows it has learned."))
        var theta0File: String?
        @Option(help: "The bootstrap θ0's pretraining steps on U (the daemon's pretrain_steps).") var bootstrapPretrainSteps = TrajectorySettings.daemonDefaults.pretrainSteps
        @Option(help: "η of the base trajectory.") var baseLr = 1e-3
        @Option(help: "ε/η.") var valLrRatio = 0.1
        @Option(help: "Proxy fine-tuning epochs.") var proxyEpochs = 2
        @Option(help: "Length bins.") var bins = 10
        @Option(help: "Dimensions of the LESS baselines' gradient projection.") var lessDims = 4096
        @Option(help: "OpenBLAS threads.") var threads = 2

        /// "4x256" → a proxy shape with the surrogate's heads (when they divide the width).
        static func proxyShape(_ text: String, heads: Int) throws -> ProxyShape {
            let parts = text.lowercased().split(whereSeparator: { $0 == "x" || $0 == "×" })
            guard parts.count == 2, let layers = Int(parts[0]), let width = Int(parts[1]), layers >= 1, width >= 1 else {
                throw ValidationError("--proxy \(text): write LAYERSxWIDTH, e.g. 4x256")
            }
            guard width % heads == 0 else { throw ValidationError("--proxy \(text): width \(width) is not divisible by --heads \(heads)") }
            return ProxyShape(layers: layers, width: width, heads: heads)
        }

        func run() throws {
            if let render {
                guard let data = FileManager.default.contents(atPath: render) else { throw ValidationError("--render \(render): cannot read the file") }
                let report = try EvaluationReport.decode(data)
                switch format {
                case "md": print(MarkdownReport.render(report))
                case "html": print(HTMLReport.render(report))
                default: throw ValidationError("--format must be md or html")
                }
                return
            }
            let sharedTargets = targets.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
            guard let target = target ?? sharedTargets.first, let output else {
                throw ValidationError("--target (or --targets) and --output are needed (or --render REPORT.json)")
            }
            guard targets == nil || self.target == nil else { throw ValidationError("give --target or --targets, not both") }
            guard targets == nil || zvalSignal == nil else { throw ValidationError("--targets and --zval-signal are two studies: run one at a time") }
            ModelBenchmark.setThreads(threads)
            var options = EvaluationOptions(dataDirectory: data, target: target, outputDirectory: output)
            options.cacheDirectory = cache
            options.poolRows = pool
            options.zvalRows = zval
            guard zvalOffTarget >= 0 && zvalOffTarget < 1 else { throw ValidationError("--zval-off-target must be in [0, 1), e.g. 0.25") }
            options.zvalOffTargetShare = zvalOffTarget
            options.testRows = testRows
            options.pretrainRows = pretrainRows
            guard targetShare >= 0 && targetShare < 0.5 else { throw ValidationError("--target-share must be in [0, 0.5), e.g. 0.03") }
            options.targetShare = targetShare
            options.arms = try arms.split(separator: ",").map {
                guard let a = EvaluationArm(rawValue: String($0)) else { throw ValidationError("--arms: unknown arm \($0); use with_zval, alone") }
                return a
            }
            options.budgetFraction = budget
            options.learningRates = try lrs.split(separator: ",").map {
                guard let v = Double($0.trimmingCharacters(in: .whitespaces)), v > 0 else { throw ValidationError("--lrs: \($0) is not a positive number") }
                return v
            }
            guard seeds >= 2 else { throw ValidationError("--seeds must be at least 2 for an interval (5 or more for the protocol)") }
            options.seeds = seeds
            options.policies = try policies.split(separator: ",").map {
                guard let p = EvaluationPolicy(rawValue: String($0)) else {
                    throw ValidationError("--policies: unknown policy \($0); use score_random, score_random@S (S from 0 to 1), score_only, score_only_unbinned, uncertainty, random, less, less_adam, dsir, random_length_matched, crossfit, crossfit@K (K from 2 to 16), score_dsir, score_random+diverse, score_dsir+diverse, score_only+diverse or oracle")
                }
                return p
            }
            options.epochs = epochs
            guard let m = TrajectoryMethod(rawValue: method) else { throw ValidationError("--method must be A or B") }
            options.method = m
            guard let f = ScoreFunction(rawValue: scoreFn) else { throw ValidationError("--score-fn must be improvement, abs or relu") }
            options.scoreFunction = f
            options.uSize = uSize
            guard width % heads == 0 else { throw ValidationError("--width must be divisible by --heads") }
            options.surrogate = ModelConfig(layers: layers, width: width, heads: heads, context: context, vocabSize: vocab)
            if !proxy.isEmpty { options.proxies = try proxy.map { try Self.proxyShape($0, heads: heads) } }
            guard let pc = ProxyContext(proxyContext) else { throw ValidationError("--proxy-context must be a token count (e.g. 256) or p95") }
            options.proxyContext = pc
            options.theta0.maxSteps = pretrainSteps
            options.theta0.learningRate = pretrainLr
            options.theta0.patience = pretrainPatience
            options.theta0.evaluateEvery = pretrainEvalEvery
            options.scoringTheta0s = try theta0.split(separator: ",").map {
                guard let kind = ScoringTheta0(rawValue: $0.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--theta0: unknown θ0 \($0); use \(ScoringTheta0.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return kind
            }
            if let theta0File {
                let digest: String
                do { digest = try SHA256.hexDigest(ofFile: URL(fileURLWithPath: theta0File)) } catch {
                    throw ValidationError("--theta0-file \(theta0File) cannot be read: \(error.localizedDescription)")
                }
                options.importedTheta0 = ImportedTheta0(path: theta0File, sha256: digest)
                if !options.scoringTheta0s.contains(.imported) { options.scoringTheta0s.append(.imported) }
            }
            guard bootstrapPretrainSteps >= 0 else { throw ValidationError("--bootstrap-pretrain-steps must be ≥ 0") }
            options.bootstrapPretrainSteps = bootstrapPretrainSteps
            options.baseLearningRate = baseLr
            options.valLearningRateRatio = valLrRatio
            options.proxyEpochs = proxyEpochs
            options.bins = bins
            options.lessDimensions = lessDims

            let bars = StageProgress()
            if targets != nil {
                let check = try SharedScoringCheck(options: options, otherTargets: Array(sharedTargets.dropFirst())) { stage, done, total in
                    bars.update(stage, done, total)
                }
                let report = try check.run(commandLine: CommandLine.arguments.joined(separator: " "))
                FileHandle.standardError.write(Data("\n".utf8))
                print(SharedScoringCheck.markdown(report))
                print("wrote \(output)/shared-scoring.json")
                return
            }
            if let zvalSignal {
                let sizes = try zvalSignal.split(separator: ",").map {
                    guard let n = Int($0.trimmingCharacters(in: .whitespaces)), n >= 4 else {
                        throw ValidationError("--zval-signal: \($0) is not a Z_val size of at least 4 rows; write e.g. 25,50,100,200")
                    }
                    return n
                }
                let study = try ZvalSignalStudy(options: options, sizes: sizes, offTargetShare: zvalOffTarget > 0 ? zvalOffTarget : 0.25) { stage, done, total in
                    bars.update(stage, done, total)
                }
                let report = try study.run(commandLine: CommandLine.arguments.joined(separator: " "))
                FileHandle.standardError.write(Data("\n".utf8))
                print(ZvalSignalStudy.markdown(report))
                print("wrote \(output)/zval-signal.json")
                return
            }
            let evaluation = ToVEvaluation(options: options) { stage, done, total in bars.update(stage, done, total) }
            // Ctrl-C or SIGTERM while θ0 pretrains: it saves where it is and a rerun goes on from there.
            // Anywhere else (or on a second one) the run exits at once: finished fine-tunes and scores
            // are on disk already and a rerun resumes from them.
            let signals = stopOnSignals(evaluation.stop, saving: "θ0 pretraining")
            defer { signals.forEach { $0.cancel() } }
            let report = try evaluation.run(commandLine: CommandLine.arguments.joined(separator: " "))
            FileHandle.standardError.write(Data("\n".utf8))
            print(MarkdownReport.render(report))
            print("wrote \(output)/report.json (\(Int(report.wallTimeSeconds)) s); render it with tovd evaluate --render \(output)/report.json --format md|html")
        }
    }
}
