import ArgumentParser
import Evaluation
import Foundation
import JSONL
import Surrogate

extension Tovd {
    struct Pretrain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a surrogate θ0 (tokenizer + language model) on a JSONL file and write a checkpoint.",
            discussion: """
                Learns a byte-level BPE tokenizer from the file, then trains the decoder-only transformer \
                with next-token loss over prompt and response. Repeated prompt text (a source's common \
                prefix, e.g. an instruction every row starts with, and any prompt line seen before) is kept \
                once, and documents are cut into context-sized windows, so the model learns the text rather \
                than reciting its few repeated parts (docs/data.md); --keep-repeats turns that off. Keep the \
                rows you will score out of this file: a model that has seen a row scores it unfairly.
                  tovd pretrain corpus.jsonl --output theta0.tovckpt --steps 2000
                """)

        @Argument(help: "JSONL with prompt/response rows.") var file: String
        @Option(name: .shortAndLong, help: "Checkpoint to write.") var output = "theta0.tovckpt"
        @Option(help: "Optimizer steps.") var steps = 1000
        @Option(help: "Peak learning rate (warmup + cosine).") var lr = 1e-3
        @Option(help: "Layers.") var layers = ModelConfig.default.layers
        @Option(help: "Model width (C).") var width = ModelConfig.default.width
        @Option(help: "Attention heads.") var heads = ModelConfig.default.heads
        @Option(help: "Context length in tokens.") var context = ModelConfig.default.context
        @Option(help: "Tokenizer vocabulary size.") var vocab = ModelConfig.default.vocabSize
        @Option(help: "Rows to learn the tokenizer from.") var tokenizerRows = 20_000
        @Option(help: "Seed for initialisation and shuffling.") var seed: UInt64 = 0
        @Flag(help: "Train on every row as it is, repeated prompt text included, each cut at the context.") var keepRepeats = false

        func validate() throws {
            guard width % heads == 0 else { throw ValidationError("--width must be divisible by --heads") }
            guard vocab >= 300 else { throw ValidationError("--vocab must be at least 300 (256 bytes + specials + merges)") }
            guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        }

        func run() async throws {
            let rows = try loadExamples(file)
            guard !rows.isEmpty else { throw CLIError("\(file) holds no usable rows") }
            let corpus: PretrainingCorpus.Kind = keepRepeats ? .rows : .deduplicated
            let texts = corpus.texts(rows.map { ($0.source, $0.prompt, $0.response) })
            let sample = texts.prefix(tokenizerRows).map { Array($0.utf8) }
            let bar = ProgressBar("tokenizer", total: vocab, unit: "tokens")
            let tokenizer = Tokenizer.train(sample: Array(sample), vocabSize: vocab) { done, total in bar.update(done) }
            bar.finish(vocab)
            let config = ModelConfig(layers: layers, width: width, heads: heads, context: context, vocabSize: vocab)
            let model = Model(config: config, seed: seed)
            let documents = corpus.examples(texts, tokenizer: tokenizer, context: context)
            var options = TrainingOptions()
            options.learningRate = Float(lr)
            options.maxSteps = steps
            options.epochs = 1_000_000
            options.schedule = .warmupCosine
            options.warmupSteps = max(1, steps / 20)
            options.seed = seed
            let progress = ProgressBar("pretrain", total: steps, unit: "steps")
            model.train(on: documents, options: options) { p in
                progress.update(p.step, note: String(format: "loss %.3f  %.0f tok/s", p.loss, p.tokensPerSecond))
            }
            progress.finish(steps)
            let bytes = SurrogateCheckpoint.encode(model: model, tokenizer: tokenizer, metadata: ["kind": "theta0", "source": URL(fileURLWithPath: file).lastPathComponent])
            guard FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
                throw CLIError("cannot write \(output)")
            }
            print("wrote \(output) (\(bytes.count) bytes, \(config.layers)×\(config.width), vocab \(tokenizer.vocabSize))")
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
