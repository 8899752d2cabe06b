import ArgumentParser
import Daemon
import Evaluation
import Foundation
import Surrogate

extension Tovd.Bench {
    /// The daemon's bootstrap θ0 pretrained on U's rows as they are vs on their de-duplicated text.
    struct BootstrapBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bootstrap",
            abstract: "The daemon's bootstrap θ0 on U as rows vs de-duplicated: held-out losses on real data.",
            discussion: """
                With no imported θ0 the daemon pretrains θ0 on U itself (pretrain_steps steps, peak LR \
                3 × lr). natural_instructions rows repeat their subtask's instruction in every row; this \
                bench measures whether keeping repeated prompt text once (as `tovd pretrain` and \
                `tovd evaluate` do) makes that θ0 better. Per seed it samples U from the evaluation's pool \
                of --target (the other subtasks), learns the tokenizer on U as the daemon does, trains one \
                θ0 per corpus from the same initialisation, and reports on rows neither saw: the response \
                loss of held-out pool rows and of the target's test rows (what scoring reads), and the \
                whole-text loss of the held-out rows (the pretraining objective, which favours the raw \
                corpus: it has read the same instructions many times). Lower is better; ln V is a uniform \
                guess. Defaults are the daemon's settings; needs `tovd data fetch bigbench-ni`. On 2 cores \
                a seed takes about 10 minutes for the default surrogate, 2 for the small one.
                  swift build -c release && .build/release/tovd bench bootstrap --seeds 3
                  .build/release/tovd bench bootstrap --surrogate small --json b.json
                """)

        @Option(help: "Directory of per-subtask JSONL files.") var data = ".cache/bigbench-ni/jsonl"
        @Option(help: "Target subtask: its test rows are measured, the pool is the other subtasks.")
        var target = "subtask061_ropes_answer_generation"
        @Option(help: "Pool rows U is drawn from.") var pool = 20_000
        @Option(help: "small (2 × 128, context 128, vocab 2048) or default (the daemon's 4 × 256, context 256, vocab 4096).")
        var surrogate = "default"
        @Option(help: "|U| (setting u_size).") var uSize = Settings().uSize
        @Option(help: "Pretraining steps (setting pretrain_steps).") var steps = Settings().pretrainSteps
        @Option(help: "η (setting lr); θ0's peak LR is 3η.") var lr = Settings().learningRate
        @Option(help: "Seeds (U sample and initialisation).") var seeds = 3
        @Option(help: "Held-out pool rows measured.") var heldOut = 1000
        @Option(help: "OpenBLAS threads.") var threads = 2
        @Option(help: "Also write the measurements as JSON here.") var json: String?

        func validate() throws {
            guard ScoreBench.shapes[surrogate] != nil else { throw ValidationError("--surrogate takes small or default (got \(surrogate))") }
            guard seeds >= 1, steps >= 1, uSize >= 1, heldOut >= 1 else { throw ValidationError("--seeds, --steps, --u-size and --held-out must be at least 1") }
        }

        func run() throws {
            BLASThreads.set(threads)
            let model = ScoreBench.shapes[surrogate]!
            var options = EvaluationOptions(dataDirectory: data, target: target, outputDirectory: "")
            options.poolRows = pool
            options.uSize = uSize
            let rows = try ToVEvaluation(options: options).rows()
            var settings = Settings()
            settings.pretrainSteps = steps
            settings.learningRate = lr
            var study = BootstrapStudy(model: model, uSize: uSize, recipe: BaseModelConfig(settings: settings).bootstrapPretraining)
            study.heldOutRows = heldOut
            print("machine: \(CPUFeatures.summary)")
            print("surrogate \(shapeLabel(model)) (context \(model.context), vocab \(model.vocabSize)), |U| \(uSize) of \(rows.pool.count) pool rows, \(steps) steps at peak LR \(3 * lr), \(seeds) seed(s); target \(target)")
            var bar: ProgressBar?
            var label = ""
            let results = try study.run(pool: rows.pool, test: rows.test, seeds: Array(0..<seeds)) { name, done, total in
                if name != label { bar?.finish(steps); bar = ProgressBar(name, total: total, unit: "steps"); label = name }
                bar?.update(done)
            }
            bar?.finish(steps)
            print(Self.table(results, uniform: log(Double(model.vocabSize))))
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try encoder.encode(results).write(to: URL(fileURLWithPath: json))
                print("wrote \(json)")
            }
        }

        /// Mean ± std over seeds per corpus, then the paired difference (deduplicated − rows) per measure.
        static func table(_ results: [BootstrapStudy.Measurement], uniform: Double) -> String {
            let measures: [(String, KeyPath<BootstrapStudy.Measurement, Double>)] = [
                ("held-out pool responses", \.heldOutResponseLoss), ("target test responses", \.targetResponseLoss),
                ("held-out pool whole text", \.heldOutTextLoss), ("last training loss", \.finalTrainingLoss),
            ]
            func cell(_ x: [Double]) -> String { String(format: "%.3f ± %.3f", Stats.mean(x), Stats.std(x)) }
            let corpora = PretrainingCorpus.Kind.allCases.map(\.rawValue)
            var lines = ["", "nats/token (mean ± std over seeds; ln V = \(String(format: "%.2f", uniform)))",
                         "measure                     " + corpora.map { $0.padding(toLength: 18, withPad: " ", startingAt: 0) }.joined()
                            + "deduplicated − rows (better in)"]
            for (name, path) in measures {
                let by = corpora.map { c in results.filter { $0.corpus == c }.map { $0[keyPath: path] } }
                let diff = zip(by[1], by[0]).map { $0 - $1 }
                lines.append(name.padding(toLength: 28, withPad: " ", startingAt: 0)
                             + by.map { cell($0).padding(toLength: 18, withPad: " ", startingAt: 0) }.joined()
                             + String(format: "%+.3f (%d of %d seeds)", Stats.mean(diff), diff.filter { $0 < 0 }.count, diff.count))
            }
            for c in corpora {
                let r = results.filter { $0.corpus == c }
                lines.append(String(format: "%@: %.0f documents, %.0f tokens per θ0, %.1f s of pretraining", c as NSString,
                                    Stats.mean(r.map { Double($0.documents) }), Stats.mean(r.map { Double($0.documentTokens) }),
                                    Stats.mean(r.map(\.seconds))))
            }
            return lines.joined(separator: "\n")
        }
    }
}
