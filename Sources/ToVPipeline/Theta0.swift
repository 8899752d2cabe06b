import Surrogate

/// θ0 with the tokenizer it reads: where both trajectories start.
public struct Theta0 {
    public var tokenizer: Tokenizer
    public var model: Model

    public init(tokenizer: Tokenizer, model: Model) {
        self.tokenizer = tokenizer
        self.model = model
    }

    /// Where θ0 comes from for a run of the pipeline.
    public enum Choice {
        /// The daemon's default: ``bootstrap(u:config:settings:shouldStop:progress:)`` on U.
        case bootstrap
        /// A bootstrap the daemon does not make (yet): the same recipe on another corpus or for other
        /// steps, to measure whether a longer or wider bootstrap selects better (issue 25, item 3).
        case bootstrapVariant(BootstrapVariant)
        /// A θ0 made elsewhere (imported, `tovd pretrain`, the evaluation's pretrained θ0): used as is,
        /// with its own tokenizer.
        case given(Theta0)
    }

    /// Which rows a bootstrap θ0 learns its tokenizer and its text from, and for how many steps.
    public struct BootstrapVariant: Equatable, Sendable {
        public enum Corpus: String, Sendable {
            /// U itself (the daemon's bootstrap).
            case u
            /// Every pool row, U and the rows to be scored alike: "all rows validated at bootstrap time".
            case pool
        }
        public var corpus: Corpus
        public var pretrainSteps: Int

        public init(corpus: Corpus, pretrainSteps: Int) {
            self.corpus = corpus
            self.pretrainSteps = pretrainSteps
        }
    }

    /// The daemon's bootstrap θ0 (DESIGN.md §4): a tokenizer learned on U's rows, a model initialised
    /// from the seed, then `pretrainSteps` steps of next-token training on U's de-duplicated text
    /// (``BootstrapPretraining``). Deterministic for the same U (in id order), shape and settings.
    public static func bootstrap(u: [RowText], config: ModelConfig, settings: TrajectorySettings,
                                 shouldStop: (@Sendable () -> Bool)? = nil, progress: ((TrainingProgress) -> Void)? = nil) -> Theta0 {
        let rows = u.map { (source: $0.source, prompt: $0.prompt, response: $0.response) }
        let tokenizer = BootstrapPretraining.tokenizer(rows, vocabSize: config.vocabSize)
        let model = Model(config: config, seed: UInt64(bitPattern: settings.seed))
        let pretraining = settings.bootstrapPretraining
        let documents = pretraining.documents(rows, tokenizer: tokenizer, context: config.context)
        pretraining.train(model, on: documents, shouldStop: shouldStop, progress: progress)
        return Theta0(tokenizer: tokenizer, model: model)
    }
}
