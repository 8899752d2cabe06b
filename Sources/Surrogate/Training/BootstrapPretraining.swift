/// How the daemon pretrains θ0 when no θ0 was imported (DESIGN.md §4, "bootstrap"): next-token
/// training on U itself, the only text it has, for a fixed number of steps.
///
/// One definition for the daemon's trainer and for `tovd bench bootstrap`, which measures the two
/// corpora against each other on real data.
public struct BootstrapPretraining: Sendable {
    /// What θ0 reads of U.
    public enum Corpus: String, Sendable, CaseIterable {
        /// Each row as it is (prompt, newline, response), cut at the context: rows of one source that
        /// share a long instruction repeat it in every row, and a small model learns to recite it.
        case rows
        /// ``PretrainingCorpus`` documents: a source's common prompt prefix and any prompt line seen
        /// before are kept once, and each document is cut into context-sized windows. The default since
        /// `tovd bench bootstrap` measured it (docs/evaluation.md, "The daemon's bootstrap θ0").
        case deduplicated
    }

    public var corpus: Corpus = .deduplicated
    public var steps: Int
    /// Peak learning rate of the warmup + cosine schedule.
    public var learningRate: Float
    public var seed: UInt64

    public init(corpus: Corpus = .deduplicated, steps: Int, learningRate: Float, seed: UInt64) {
        self.corpus = corpus
        self.steps = steps
        self.learningRate = learningRate
        self.seed = seed
    }

    /// The training documents for U under this corpus. `source` groups rows that share a prompt
    /// prefix (rows without one form a single group, whose common prefix is usually empty, so only
    /// repeated lines are dropped). The bytes are UTF-8 text (the daemon validated them); the rare
    /// invalid sequence becomes U+FFFD in the de-duplicated corpus.
    public func documents(_ u: [(source: String?, prompt: [UInt8], response: [UInt8])], tokenizer: Tokenizer, context: Int) -> [Example] {
        switch corpus {
        case .rows:
            return u.map { Example(prompt: [], response: tokenizer.encode($0.prompt + [0x0A] + $0.response), allTokens: true) }
        case .deduplicated:
            let texts = PretrainingCorpus.documents(u.map {
                ($0.source ?? "", String(decoding: $0.prompt, as: UTF8.self), String(decoding: $0.response, as: UTF8.self))
            })
            return PretrainingCorpus.windows(texts.map { tokenizer.encode($0) }, length: context - 1)
                .map { Example(prompt: [], response: $0, allTokens: true) }
        }
    }

    /// Trains `model` in place on `documents` for `steps` optimizer steps (no-op for 0).
    public func train(_ model: Model, on documents: [Example], shouldStop: (@Sendable () -> Bool)? = nil,
                      progress: ((TrainingProgress) -> Void)? = nil) {
        guard steps > 0, !documents.isEmpty else { return }
        var options = TrainingOptions()
        options.learningRate = learningRate
        options.maxSteps = steps
        options.epochs = max(1, steps)
        options.schedule = .warmupCosine
        options.warmupSteps = max(1, steps / 10)
        options.seed = seed
        options.shouldStop = shouldStop
        model.train(on: documents, options: options, progress: progress)
    }
}
