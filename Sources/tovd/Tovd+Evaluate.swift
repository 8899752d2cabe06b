import ArgumentParser
import Evaluation
import Foundation
import Selection
import Surrogate

extension Tovd {
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Does ToV selection beat random for a target? Reduced-LR proxy fine-tuning on real data.",
            discussion: """
                Splits the target subtask into Z_val and a held-out test set, builds a pool from the other \
                subtasks, pretrains θ0 on rows outside the pool, scores the pool with ToV, selects a budget \
                per policy (score_random, score_only, score_only_unbinned, uncertainty, random), fine-tunes a \
                proxy from θ0 on each selection at several reduced learning rates (arXiv 2512.24503), and \
                reports target test log-loss per policy × LR × seed, rank stability (Spearman) across LRs, \
                enrichment and plots. Writes report.md, report.html, report.json and runs.jsonl to --output; \
                rerunning with the same --output resumes.
                  tovd data fetch bigbench-ni
                  tovd evaluate --target subtask061_ropes_answer_generation --output eval/ropes
                """)

        @Option(help: "Target subtask (a JSONL file name in --data without .jsonl).") var target: String
        @Option(help: "Directory of per-subtask JSONL files.") var data = ".cache/bigbench-ni/jsonl"
        @Option(name: .shortAndLong, help: "Output directory (resumable).") var output: String
        @Option(help: "Pool rows (from the other subtasks).") var pool = 20_000
        @Option(help: "Z_val rows (from the target).") var zval = 200
        @Option(help: "Held-out target test rows.") var testRows = 1000
        @Option(help: "Rows θ0 is pretrained on (outside the pool).") var pretrainRows = 4000
        @Flag(help: "Add the rest of the target subtask to the pool.") var includeTargetInPool = false
        @Flag(help: "Fine-tune each proxy on the selection plus Z_val: does the selection add to the target data you have?")
        var proxyWithZval = false
        @Option(help: "Budget as a fraction of the scored pool.") var budget = 0.05
        @Option(help: "Comma-separated proxy learning rates.") var lrs = "1e-4,3e-5,1e-5"
        @Option(help: "Seeds (U sample, trajectories, proxy shuffles).") var seeds = 3
        @Option(help: "Total draws of the random policy.") var randomDraws = 4
        @Option(help: "Comma-separated policies.") var policies = "score_random,score_only,score_only_unbinned,uncertainty,random"
        @Option(help: "L, scoring epochs.") var epochs = 2
        @Option(help: "A or B.") var method = "A"
        @Option(help: "improvement, abs or relu.") var scoreFn = "improvement"
        @Option(help: "|U|.") var uSize = 2048
        @Option(help: "Surrogate layers.") var layers = 2
        @Option(help: "Surrogate width.") var width = 128
        @Option(help: "Surrogate heads.") var heads = 4
        @Option(help: "Surrogate context.") var context = 128
        @Option(help: "Tokenizer vocabulary.") var vocab = 2048
        @Option(help: "θ0 pretraining steps.") var pretrainSteps = 400
        @Option(help: "η of the base trajectory.") var baseLr = 1e-3
        @Option(help: "ε/η.") var valLrRatio = 0.1
        @Option(help: "Proxy fine-tuning epochs.") var proxyEpochs = 2
        @Option(help: "Length bins.") var bins = 10
        @Option(help: "OpenBLAS threads.") var threads = 2

        func run() throws {
            ModelBenchmark.setThreads(threads)
            var options = EvaluationOptions(dataDirectory: data, target: target, outputDirectory: output)
            options.poolRows = pool
            options.zvalRows = zval
            options.testRows = testRows
            options.pretrainRows = pretrainRows
            options.includeTargetInPool = includeTargetInPool
            options.proxyAddsZval = proxyWithZval
            options.budgetFraction = budget
            options.learningRates = try lrs.split(separator: ",").map {
                guard let v = Double($0.trimmingCharacters(in: .whitespaces)), v > 0 else { throw ValidationError("--lrs: \($0) is not a positive number") }
                return v
            }
            options.seeds = seeds
            options.randomDraws = randomDraws
            options.policies = try policies.split(separator: ",").map {
                guard let p = Policy(rawValue: String($0)) else { throw ValidationError("--policies: unknown policy \($0)") }
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
            options.pretrainSteps = pretrainSteps
            options.baseLearningRate = baseLr
            options.valLearningRateRatio = valLrRatio
            options.proxyEpochs = proxyEpochs
            options.bins = bins

            var bars: [String: ProgressBar] = [:]
            let evaluation = ToVEvaluation(options: options) { stage, done, total in
                let key = stage.components(separatedBy: " (").first ?? stage
                let bar = bars[key] ?? ProgressBar(key, total: total, unit: "steps")
                bars[key] = bar
                bar.update(done, note: stage.contains("(") ? String(stage.drop { $0 != "(" }) : "")
            }
            let report = try evaluation.run(commandLine: CommandLine.arguments.joined(separator: " "))
            FileHandle.standardError.write(Data("\n".utf8))
            print(MarkdownReport.render(report))
            print("wrote \(output)/report.md, report.html, report.json (\(Int(report.wallTimeSeconds)) s)")
        }
    }
}
