import Foundation
import JSONL
import Selection
import Surrogate
import ToVPipeline

/// Does the daemon's bootstrap θ0 (pretrained on U itself, DESIGN.md §4) get better from the
/// evaluation's de-duplication? Measured on real rows: per seed, U is drawn from the evaluation's pool
/// as the daemon draws it (ToVPipeline's ``UDraw``), the tokenizer is learned on U as the daemon does,
/// and one θ0 per ``PretrainingCorpus/Kind`` is trained from the same initialisation for the same steps. Each is
/// then measured where ToV uses it, on rows it never saw:
/// - response loss of held-out pool rows given their prompts (what the trajectories and scores start from);
/// - response loss of the target's test rows (a subtask outside the pool: does θ0 know language?);
/// - loss of the held-out pool rows as whole text (the pretraining objective itself; the raw corpus
///   has seen the same sources' instructions many times, so this one favours it by construction).
public struct BootstrapStudy {
    public struct Measurement: Codable, Sendable, Equatable {
        public var corpus: String
        public var seed: Int
        /// Training documents and their tokens (after de-duplication and windowing, if any).
        public var documents: Int
        public var documentTokens: Int
        public var finalTrainingLoss: Double
        public var heldOutResponseLoss: Double
        public var targetResponseLoss: Double
        public var heldOutTextLoss: Double
        public var seconds: Double
    }

    public var model: ModelConfig
    public var uSize: Int
    public var heldOutRows = 1000
    public var recipe: BootstrapPretraining

    public init(model: ModelConfig, uSize: Int, recipe: BootstrapPretraining) {
        self.model = model
        self.uSize = uSize
        self.recipe = recipe
    }

    /// One measurement per (seed, corpus), seeds in order, each corpus of ``PretrainingCorpus/Kind``.
    /// `progress` gets (corpus, seed, done steps, total steps).
    public func run(pool: [JSONLExample], test: [JSONLExample], seeds: [Int],
                    progress: (_ label: String, _ done: Int, _ total: Int) -> Void = { _, _, _ in }) throws -> [Measurement] {
        guard pool.count > uSize else {
            throw EvaluationError("the pool has \(pool.count) rows, not more than |U| = \(uSize): lower --u-size")
        }
        var out: [Measurement] = []
        for seed in seeds {
            // U as the daemon draws it (ids are pool indices), in id order; the held-out rows follow it in
            // the same uniform ranking.
            let order = UDraw.ranked(ids: pool.indices.map(Int64.init), seed: Int64(seed)).map { Int($0) }
            let u = order.prefix(uSize).sorted().map { pool[$0] }
            let heldOut = order.dropFirst(uSize).prefix(heldOutRows).map { pool[$0] }
            let bytes = u.map { (source: $0.source, prompt: Array($0.prompt.utf8), response: Array($0.response.utf8)) }
            // As the daemon: the tokenizer is learned from U's rows as they are, so both θ0s share it and
            // their per-token losses compare.
            let tokenizer = BootstrapPretraining.tokenizer(bytes, vocabSize: model.vocabSize)
            func meanLoss(_ theta0: Model, _ examples: [Example]) -> Double {
                let losses = theta0.losses(examples)
                return losses.reduce(0) { $0 + Double($1.meanNLL) } / Double(max(losses.count, 1))
            }
            func responses(_ rows: [JSONLExample]) -> [Example] {
                rows.map { tokenizer.example(prompt: Array($0.prompt.utf8), response: Array($0.response.utf8)) }
            }
            let heldOutResponses = responses(heldOut), testResponses = responses(test)
            // Whole held-out rows exactly as the raw corpus would present them.
            let raw = PretrainingCorpus.Kind.rows
            let heldOutText = raw.examples(raw.texts(heldOut.map { ($0.source, $0.prompt, $0.response) }), tokenizer: tokenizer, context: model.context)
            for corpus in PretrainingCorpus.Kind.allCases {
                var recipe = self.recipe
                recipe.corpus = corpus
                let documents = recipe.documents(bytes, tokenizer: tokenizer, context: model.context)
                let theta0 = Model(config: model, seed: recipe.seed)
                let label = "seed \(seed) \(corpus.rawValue)"
                var last = Double.nan
                let start = Date()
                withoutActuallyEscaping(progress) { progress in
                    recipe.train(theta0, on: documents, progress: { p in
                        last = Double(p.loss)
                        progress(label, p.step, p.totalSteps)
                    })
                }
                let seconds = Date().timeIntervalSince(start)
                out.append(Measurement(
                    corpus: corpus.rawValue, seed: seed, documents: documents.count,
                    documentTokens: documents.reduce(0) { $0 + $1.response.count },
                    finalTrainingLoss: last, heldOutResponseLoss: meanLoss(theta0, heldOutResponses),
                    targetResponseLoss: meanLoss(theta0, testResponses), heldOutTextLoss: meanLoss(theta0, heldOutText),
                    seconds: seconds))
            }
        }
        return out
    }
}
