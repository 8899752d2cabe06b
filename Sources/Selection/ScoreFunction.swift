/// F in φ_i = (1/L) Σ_l F(ℓ(θ_bas^l, x_i) − ℓ(θ_val^l, x_i)) (ToV, arXiv 2510.00386, eq. for φ).
///
/// y > 0 means training on Z_val lowered the example's loss: the example "agrees" with the target.
public enum ScoreFunction: String, Codable, CaseIterable, Sendable {
    /// F(y) = y
    case improvement
    /// F(y) = |y|
    case abs
    /// F(y) = max(y, 0)
    case relu

    public func apply(_ y: Double) -> Double {
        switch self {
        case .improvement: y
        case .abs: Swift.abs(y)
        case .relu: max(y, 0)
        }
    }
}

/// φ = (1/L) Σ_l F(base_l − val_l): the ToV score of one example from its per-epoch losses.
public func tovScore(baseLosses: [Double], valLosses: [Double], function: ScoreFunction) -> Double {
    precondition(!baseLosses.isEmpty && baseLosses.count == valLosses.count, "one base and one val loss per scoring epoch")
    var sum = 0.0
    for (b, v) in zip(baseLosses, valLosses) { sum += function.apply(b - v) }
    return sum / Double(baseLosses.count)
}
