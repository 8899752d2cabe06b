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

    /// How a run made from this θ0 is named when it is not the run's first θ0: "score_random (bootstrap θ0)".
    func label(_ policy: EvaluationPolicy) -> String { "\(policy.rawValue) (\(rawValue) θ0)" }
}

extension EvaluationPolicy {
    /// Whether the selection reads ToV's scores (φ or ψ), and so depends on the θ0 they were made from.
    var readsToVScores: Bool {
        switch self {
        case .selection(let p): p != .random
        case .less, .lessAdam, .dsir, .randomLengthMatched: false
        }
    }
}
