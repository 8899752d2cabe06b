/// How the daemon pretrains θ0 when no θ0 was imported (DESIGN.md §4, "bootstrap"): next-token
/// training on U itself, the only text it has, for a fixed number of steps.
///
/// One definition for the daemon's trainer and for `tovd bench bootstrap`, which measures the two
/// corpora against each other on real data.
public struct BootstrapPretraining: Sendable {
    /// What θ0 reads of U.
    public var corpus: PretrainingCorpus.Kind = .deduplicated
    public var steps: Int
    /// Peak learning rate of the warmup + cosine schedule.
    public var learningRate: Float
    public var seed: UInt64
    /// The linear layers' arithmetic (``TrainingPrecision``; fp32 unless `tovd bench train` asks).
    public var precision: TrainingPrecision = .fp32

    public init(corpus: PretrainingCorpus.Kind = .deduplicated, steps: Int, learningRate: Float, seed: UInt64,
                precision: TrainingPrecision = .fp32) {
        self.corpus = corpus
        self.steps = steps
        self.learningRate = learningRate
        self.seed = seed
        self.precision = precision
    }

    /// The daemon's tokenizer for a base model: learned on U's rows as they are (prompt, newline,
    /// response), whichever corpus θ0 then reads.
    public static func tokenizer(_ u: [(source: String?, prompt: [UInt8], response: [UInt8])], vocabSize: Int) -> Tokenizer {
        Tokenizer.train(sample: u.map { $0.prompt + [0x0A] + $0.response }, vocabSize: vocabSize)
    }

    /// The training documents for U under this corpus. `source` groups rows that share a prompt
    /// prefix (rows without one form a single group, whose common prefix is usually empty, so only
    /// repeated lines are dropped). The bytes are UTF-8 text (the daemon validated them); the rare
    /// invalid sequence becomes U+FFFD.
    public func documents(_ u: [(source: String?, prompt: [UInt8], response: [UInt8])], tokenizer: Tokenizer, context: Int) -> [Example] {
        let texts = corpus.texts(u.map {
            ($0.source, String(decoding: $0.prompt, as: UTF8.self), String(decoding: $0.response, as: UTF8.self))
        })
        return corpus.examples(texts, tokenizer: tokenizer, context: context)
    }

    /// Trains `model` in place on `documents` for `steps` optimizer steps (no-op for 0).
    public func train(_ model: Model, on documents: [Example], shouldStop: (@Sendable () -> Bool)? = nil,
                      progress: ((TrainingProgress) -> Void)? = nil) {
        guard steps > 0, !documents.isEmpty else { return }
        var options = self.options
        options.shouldStop = shouldStop
        model.train(on: documents, options: options, progress: progress)
    }

    /// The training options of ``train(_:on:shouldStop:progress:)`` (`tovd bench train` times them).
    public var options: TrainingOptions {
        var options = TrainingOptions()
        options.learningRate = learningRate
        options.maxSteps = steps
        options.epochs = max(1, steps)
        options.schedule = .warmupCosine
        options.warmupSteps = max(1, steps / 10)
        options.seed = seed
        options.precision = precision
        return options
    }
}
