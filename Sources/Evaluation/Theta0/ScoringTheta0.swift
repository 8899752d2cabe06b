import Foundation
import ToVPipeline

/// The θ0 a ToV selection is made from in `tovd evaluate` (the proxies always start from the pretrained
/// θ0 of their shape: only the selection changes).
public enum ScoringTheta0: String, Codable, CaseIterable, Sendable {
    /// The evaluation-grade θ0 (``Theta0Pretraining``): what a daemon given a pretrained or imported θ0
    /// would start from.
    case pretrained
    /// The daemon's default: the pipeline's bootstrap θ0, `pretrain_steps` steps on U itself
    /// (``ToVPipeline/Theta0/bootstrap(u:config:settings:shouldStop:progress:)``).
    case bootstrap
    /// A θ0 checkpoint file (``EvaluationOptions/importedTheta0``), e.g. from `tovd pretrain`: what a
    /// daemon would select with after `tovd base import` of that file. Used as is, with its tokenizer.
    case imported
    /// The pretrained θ0's recipe, corpus and tokenizer in the scoring layout (prompt, separator,
    /// response): what `tovd pretrain` makes by default from the same rows (issue 25, item 6).
    case pretrainedScoringLayout = "pretrained-scoring"
    /// Candidate bootstraps for when nothing is imported (issue 25, item 3), each the daemon's recipe
    /// with one thing changed: 4 × `pretrain_steps` on U; `pretrain_steps` on the whole pool (every
    /// validated row at bootstrap time, de-duplicated like U); and both.
    case bootstrapLong = "bootstrap-4x"
    case bootstrapPool = "bootstrap-pool"
    case bootstrapPoolLong = "bootstrap-pool-4x"

    /// The pipeline's bootstrap variant for the candidate bootstraps; nil for the others.
    func bootstrapVariant(pretrainSteps: Int) -> Theta0.BootstrapVariant? {
        switch self {
        case .bootstrapLong: .init(corpus: .u, pretrainSteps: 4 * pretrainSteps)
        case .bootstrapPool: .init(corpus: .pool, pretrainSteps: pretrainSteps)
        case .bootstrapPoolLong: .init(corpus: .pool, pretrainSteps: 4 * pretrainSteps)
        case .pretrained, .bootstrap, .imported, .pretrainedScoringLayout: nil
        }
    }

    /// How a run made from this θ0 is named when it is not the run's first θ0: "score_random (bootstrap θ0)".
    func label(_ policy: EvaluationPolicy) -> String { "\(policy.rawValue) (\(rawValue) θ0)" }
}

extension EvaluationPolicy {
    /// Whether the selection reads ToV's scores (φ or ψ), and so depends on the θ0 they were made from.
    var readsToVScores: Bool {
        switch self {
        case .selection(let p): p != .random
        case .scoreShare, .crossFitted, .diverse: true
        case .less, .lessAdam, .dsir, .randomLengthMatched, .oracle: false
        }
    }
}
