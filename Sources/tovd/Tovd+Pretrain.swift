import ArgumentParser
import Evaluation
import Foundation
import JSONL
import Surrogate

extension Tovd {
    struct Pretrain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pretrain a θ0 (tokenizer + language model) on a JSONL corpus, for `tovd base import`.",
            discussion: """
                The same pretraining as `tovd evaluate`'s θ0: a byte-level BPE tokenizer learned from the \
                corpus, then the decoder-only transformer trained with next-token loss under warmup + \
                cosine, with a held-out early stop (every --eval-every steps; it stops after --patience \
                checks without a new best and keeps the best weights). Repeated prompt text (a source's \
                common instruction, a passage seen before) is kept once, so the model learns the text \
                rather than reciting its repeated parts (docs/data.md); --keep-repeats turns that off.

                --layout scoring (the default) puts the separator token between each row's prompt and \
                response, as the daemon's scoring pass reads them, so θ0 knows the token every score is \
                measured after; --layout text joins them with a newline, as a plain corpus reads.

                Resumable: progress is saved in --cache at every held-out check and on Ctrl-C, and the \
                same command goes on from there. The checkpoint's shape must be the daemon's `surrogate` \
                setting for `tovd base import` to accept it.

                Keep the rows you will score out of the corpus: θ0 has then learned those rows' text, \
                their losses are low under every model of the trajectory, and their φ (a difference of \
                two such losses) carries less of what Z_val teaches; a corpus from the same kind of text \
                without those rows is what θ0 needs (docs/operations.md, "Start from your own θ0").
                  tovd pretrain corpus.jsonl --output theta0.tovckpt --layers 2 --width 128 --context 128 --vocab 2048
                  tovd base import theta0.tovckpt --name corpus-2026-12
                """)

        @Argument(help: "JSONL with prompt/response rows.") var file: String
        @Option(name: .shortAndLong, help: "Checkpoint to write.") var output = "theta0.tovckpt"
        @Option(help: "Most optimizer steps (the held-out early stop may end sooner).") var steps = Theta0Recipe().maxSteps
        @Option(help: "Peak learning rate (warmup + cosine).") var lr = Theta0Recipe().learningRate
        @Option(help: "Steps between held-out checks.") var evalEvery = Theta0Recipe().evaluateEvery
        @Option(help: "Held-out checks without a new best before stopping.") var patience = Theta0Recipe().patience
        @Option(help: "scoring (prompt, separator token, response: what the daemon scores) or text (prompt, newline, response).")
        var layout = Theta0Layout.scoring
        @Option(help: "Layers.") var layers = ModelConfig.default.layers
        @Option(help: "Model width (C).") var width = ModelConfig.default.width
        @Option(help: "Attention heads.") var heads = ModelConfig.default.heads
        @Option(help: "Context length in tokens.") var context = ModelConfig.default.context
        @Option(help: "Tokenizer vocabulary size.") var vocab = ModelConfig.default.vocabSize
        @Option(help: "Rows to learn the tokenizer from.") var tokenizerRows = Theta0Recipe().tokenizerDocuments
        @Option(help: "Seed for initialisation, the held-out split and shuffling.") var seed: UInt64 = 0
        @Option(help: "Where unfinished pretraining is saved so the same command resumes.") var cache = ".cache/tovd-pretrain"
        @Flag(help: "Train on every row as it is, repeated prompt text included.") var keepRepeats = false

        func validate() throws {
            guard width % heads == 0 else { throw ValidationError("--width must be divisible by --heads") }
            guard vocab >= 300 else { throw ValidationError("--vocab must be at least 300 (256 bytes + specials + merges)") }
            guard steps >= 1, evalEvery >= 1, patience >= 1 else { throw ValidationError("--steps, --eval-every and --patience must be at least 1") }
            guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be positive") }
        }

        func run() async throws {
            let rows = try loadExamples(file)
            guard !rows.isEmpty else { throw CLIError("\(file) holds no usable rows") }
            let documents = keepRepeats
                ? rows.map { PretrainingCorpus.Document(prompt: $0.prompt, response: $0.response) }
                : PretrainingCorpus.rowsWithoutRepeats(rows.map { ($0.source ?? "", $0.prompt, $0.response) })
            var recipe = Theta0Recipe()
            recipe.maxSteps = steps
            recipe.learningRate = lr
            recipe.evaluateEvery = evalEvery
            recipe.patience = patience
            recipe.seed = seed
            recipe.tokenizerDocuments = tokenizerRows
            recipe.layout = layout
            let config = ModelConfig(layers: layers, width: width, heads: heads, context: context, vocabSize: vocab)
            let pretraining = Theta0Pretraining(recipe: recipe, cacheDirectory: cache)
            let bars = StageProgress()
            let signals = stopOnSignals(pretraining.stop, saving: "pretraining")
            defer { signals.forEach { $0.cancel() } }
            let (tokenizer, model, summary) = try pretraining.model(documents: documents, config: config, tokenizer: nil) { stage, done, total in
                bars.update(stage, done, total)
            }
            FileHandle.standardError.write(Data("\n".utf8))
            let metadata = ["kind": "theta0", "source": URL(fileURLWithPath: file).lastPathComponent, "layout": layout.rawValue,
                            "summary": String(decoding: try JSONEncoder().encode(summary), as: UTF8.self)]
            let bytes = SurrogateCheckpoint.encode(model: model, tokenizer: tokenizer, metadata: metadata)
            guard FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
                throw CLIError("cannot write \(output): check the directory exists and is writable")
            }
            let stopped = summary.stoppedEarly ? "stopped early at step \(summary.steps)" : "\(summary.steps) steps"
            print("wrote \(output) (\(bytes.count) bytes, \(config.layers)×\(config.width), context \(config.context), vocab \(tokenizer.vocabSize)): "
                  + "\(stopped), held-out loss \(String(format: "%.3f", summary.bestHeldOutLoss)), \(summary.trainingTokens) tokens in \(summary.trainingWindows) windows, "
                  + "\(Int(summary.wallSeconds)) s; load it with `tovd base import \(output)`")
        }
    }

    struct Score: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Score a JSONL file offline with a checkpoint: per-example response loss as JSONL.",
            discussion: """
                Prints one object per input row: {"line", "loss", "tokens", "uncertainty"} where loss is the \
                mean negative log-likelihood of the response tokens given the prompt (nats/token) and \
                uncertainty is ψ = mean log[p(1−p)]. Add --per-token for the per-token losses.
                """)

        @Option(help: "Checkpoint written by `tovd pretrain`.") var checkpoint: String
        @Argument(help: "JSONL with prompt/response rows.") var file: String
        @Flag(help: "Include per-token losses.") var perToken = false
        @Option(help: "Rows per forward batch.") var batchSize = 32

        func run() async throws {
            let loaded = try SurrogateCheckpoint.read(from: checkpoint)
            var batch: [(Int, Example)] = []
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            func flush() throws {
                guard !batch.isEmpty else { return }
                let losses = loaded.model.losses(batch.map(\.1), perToken: perToken)
                for ((line, _), loss) in zip(batch, losses) {
                    var object: [String: JSONValue] = [
                        "line": .int(Int64(line)), "loss": .double(Double(loss.meanNLL)),
                        "tokens": .int(Int64(loss.tokenCount)), "uncertainty": .double(Double(loss.psi)),
                    ]
                    if perToken { object["per_token"] = .array(loss.perToken.map { .double(Double($0)) }) }
                    print(String(decoding: try encoder.encode(object), as: UTF8.self))
                }
                batch.removeAll()
            }
            var line = 0
            for result in try JSONLReader(url: URL(fileURLWithPath: file)) {
                line += 1
                switch result {
                case .failure(let error): FileHandle.standardError.write(Data("\(file):\(error)\n".utf8))
                case .success(let example):
                    batch.append((line, loaded.tokenizer.example(prompt: Array(example.prompt.utf8), response: Array(example.response.utf8))))
                    if batch.count >= batchSize { try flush() }
                }
            }
            try flush()
        }
    }
}

extension Theta0Layout: ExpressibleByArgument {}

/// Every good row of a JSONL file; bad lines are reported on stderr and skipped.
func loadExamples(_ path: String) throws -> [JSONLExample] {
    var rows: [JSONLExample] = []
    var bad = 0
    for result in try JSONLReader(url: URL(fileURLWithPath: path)) {
        switch result {
        case .success(let row): rows.append(row)
        case .failure(let error):
            bad += 1
            if bad <= 10 { FileHandle.standardError.write(Data("\(path):\(error)\n".utf8)) }
        }
    }
    if bad > 10 { FileHandle.standardError.write(Data("\(path): \(bad) bad lines skipped in all\n".utf8)) }
    return rows
}
