import ArgumentParser
import Evaluation
import Foundation
import Selection
import Surrogate
import ToVPipeline

extension Tovd {
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Does ToV selection beat random for a target? Reduced-LR proxy fine-tuning on real data.",
            discussion: """
                Splits the target subtask into Z_val and a held-out test set, builds a pool from the other \
                subtasks (plus a --target-share of the target's other rows), pretrains θ0 as a language model \
                on de-duplicated rows outside the pool (held-out early stop, cached in --cache), scores the pool \
                with the daemon's own ToV pipeline (from the pretrained θ0 and from the daemon's bootstrap θ0, side by side) \
                and two gradient-similarity baselines, selects a budget per policy (score_random, score_only, \
                score_only_unbinned, uncertainty, less, less_adam, random), fine-tunes a proxy from θ0 (and each --proxy \
                shape from its own θ0) on each selection at several reduced learning rates (arXiv 2512.24503), \
                and reports target test log-loss per policy × LR × seed, rank stability (Spearman) across LRs, \
                enrichment, scoring cost and plots. Writes report.md, report.html, report.json, options.json and \
                runs.jsonl to --output; rerunning with the same --output and settings resumes, other settings are refused. \
                Ctrl-C while θ0 pretrains saves it (weights and optimizer state) so the rerun goes on from that step.
                  tovd data fetch bigbench-ni
                  tovd evaluate --target subtask061_ropes_answer_generation --output eval/ropes
                """)

        @Option(help: "Target subtask (a JSONL file name in --data without .jsonl).") var target: String
        @Option(help: "Directory of per-subtask JSONL files.") var data = ".cache/bigbench-ni/jsonl"
        @Option(name: .shortAndLong, help: "Output directory (resumable; refused when it holds results of other settings).") var output: String
        @Option(help: "Cache of pretrained θ0s, keyed by everything that shapes them (shared by runs).") var cache = ".cache/tovd-eval"
        @Option(help: "Pool rows (from the other subtasks).") var pool = 20_000
        @Option(help: "Z_val rows (from the target).") var zval = 200
        @Option(help: "Held-out target test rows.") var testRows = 1000
        @Option(help: "Rows θ0 is pretrained on (outside the pool; their repeated prompt lines are kept once).") var pretrainRows = 40_000
        @Option(help: "Share of the pool made of other rows of the target subtask (0: transfer setting, e.g. 0.03).") var targetShare = 0.0
        @Flag(help: "Fine-tune each proxy on the selection plus Z_val: does the selection add to the target data you have?")
        var proxyWithZval = false
        @Option(help: "Budget as a fraction of the scored pool.") var budget = 0.05
        @Option(help: "Comma-separated proxy learning rates.") var lrs = "1e-4,3e-5,1e-5"
        @Option(help: "Seeds (U sample, trajectories, proxy shuffles).") var seeds = 3
        @Option(help: "Total draws of the random policy.") var randomDraws = 4
        @Option(help: "Comma-separated policies: the selection policies, less (LESS-like: the sign of each row's gradient) and less_adam (LESS's Adam-preconditioned gradients).")
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
        @Option(help: "Another proxy shape LAYERSxWIDTH fine-tuned on every selection besides the surrogate's (repeatable), e.g. 4x256.")
        var proxy: [String] = []
        @Option(help: "θ0 pretraining: most optimizer steps (the CPU budget).") var pretrainSteps = Theta0Recipe().maxSteps
        @Option(help: "θ0 pretraining: peak learning rate (warmup + cosine).") var pretrainLr = Theta0Recipe().learningRate
        @Option(help: "θ0 pretraining: held-out checks without a new best before stopping.") var pretrainPatience = Theta0Recipe().patience
        @Option(help: "θ0 pretraining: steps between held-out checks.") var pretrainEvalEvery = Theta0Recipe().evaluateEvery
        @Option(help: "Comma-separated θ0s the ToV policies select from, side by side: pretrained (θ0 pretrained outside the pool, the --pretrain-* options) and bootstrap (the daemon's default: pretrained on U itself). The first keeps the plain policy names; the others' runs are named \"<policy> (<θ0> θ0)\".")
        var theta0 = EvaluationOptions.defaultScoringTheta0s.map(\.rawValue).joined(separator: ",")
        @Option(help: "The bootstrap θ0's pretraining steps on U (the daemon's pretrain_steps).") var bootstrapPretrainSteps = TrajectorySettings.daemonDefaults.pretrainSteps
        @Option(help: "η of the base trajectory.") var baseLr = 1e-3
        @Option(help: "ε/η.") var valLrRatio = 0.1
        @Option(help: "Proxy fine-tuning epochs.") var proxyEpochs = 2
        @Option(help: "Length bins.") var bins = 10
        @Option(help: "Dimensions of the LESS baselines' gradient projection.") var lessDims = 4096
        @Option(help: "OpenBLAS threads.") var threads = 2

        /// "4x256" → a proxy shape with the surrogate's heads (when they divide the width), context and vocabulary.
        static func proxyShape(_ text: String, heads: Int, context: Int, vocab: Int) throws -> ModelConfig {
            let parts = text.lowercased().split(whereSeparator: { $0 == "x" || $0 == "×" })
            guard parts.count == 2, let layers = Int(parts[0]), let width = Int(parts[1]), layers >= 1, width >= 1 else {
                throw ValidationError("--proxy \(text): write LAYERSxWIDTH, e.g. 4x256")
            }
            guard width % heads == 0 else { throw ValidationError("--proxy \(text): width \(width) is not divisible by --heads \(heads)") }
            return ModelConfig(layers: layers, width: width, heads: heads, context: context, vocabSize: vocab)
        }

        func run() throws {
            ModelBenchmark.setThreads(threads)
            var options = EvaluationOptions(dataDirectory: data, target: target, outputDirectory: output)
            options.cacheDirectory = cache
            options.poolRows = pool
            options.zvalRows = zval
            options.testRows = testRows
            options.pretrainRows = pretrainRows
            guard targetShare >= 0 && targetShare < 0.5 else { throw ValidationError("--target-share must be in [0, 0.5), e.g. 0.03") }
            options.targetShare = targetShare
            options.proxyAddsZval = proxyWithZval
            options.budgetFraction = budget
            options.learningRates = try lrs.split(separator: ",").map {
                guard let v = Double($0.trimmingCharacters(in: .whitespaces)), v > 0 else { throw ValidationError("--lrs: \($0) is not a positive number") }
                return v
            }
            options.seeds = seeds
            options.randomDraws = randomDraws
            options.policies = try policies.split(separator: ",").map {
                guard let p = EvaluationPolicy(rawValue: String($0)) else {
                    throw ValidationError("--policies: unknown policy \($0); use score_random, score_only, score_only_unbinned, uncertainty, random or less")
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
            options.proxies = try proxy.map { try Self.proxyShape($0, heads: heads, context: context, vocab: vocab) }
            options.theta0.maxSteps = pretrainSteps
            options.theta0.learningRate = pretrainLr
            options.theta0.patience = pretrainPatience
            options.theta0.evaluateEvery = pretrainEvalEvery
            options.scoringTheta0s = try theta0.split(separator: ",").map {
                guard let kind = ScoringTheta0(rawValue: $0.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--theta0: unknown θ0 \($0); use pretrained and/or bootstrap")
                }
                return kind
            }
            guard bootstrapPretrainSteps >= 0 else { throw ValidationError("--bootstrap-pretrain-steps must be ≥ 0") }
            options.bootstrapPretrainSteps = bootstrapPretrainSteps
            options.baseLearningRate = baseLr
            options.valLearningRateRatio = valLrRatio
            options.proxyEpochs = proxyEpochs
            options.bins = bins
            options.lessDimensions = lessDims

            var bars: [String: ProgressBar] = [:]
            let evaluation = ToVEvaluation(options: options) { stage, done, total in
                let key = stage.components(separatedBy: " (").first ?? stage
                let unit = key.contains("scoring") || key.contains("gradients") ? "rows" : key.contains("fine-tuning") ? "runs" : "steps"
                let bar = bars[key] ?? ProgressBar(key, total: total, unit: unit)
                bars[key] = bar
                bar.update(done, note: stage.contains("(") ? String(stage.drop { $0 != "(" }) : "")
            }
            // Ctrl-C or SIGTERM while θ0 pretrains: it saves where it is and a rerun goes on from there.
            // Anywhere else (or on a second one) the run exits at once: finished fine-tunes and scores
            // are on disk already and a rerun resumes from them.
            let signals = [SIGINT, SIGTERM].map { (number: Int32) -> DispatchSourceSignal in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    if evaluation.stop.request() {
                        FileHandle.standardError.write(Data("\nstopping θ0 pretraining after this step to save it (again to quit at once)\n".utf8))
                    } else {
                        FileHandle.standardError.write(Data("\ninterrupted: rerun the same command to resume\n".utf8))
                        Foundation.exit(130)
                    }
                }
                source.resume()
                return source
            }
            defer { signals.forEach { $0.cancel() } }
            let report = try evaluation.run(commandLine: CommandLine.arguments.joined(separator: " "))
            FileHandle.standardError.write(Data("\n".utf8))
            print(MarkdownReport.render(report))
            print("wrote \(output)/report.md, report.html, report.json (\(Int(report.wallTimeSeconds)) s)")
        }
    }
}
