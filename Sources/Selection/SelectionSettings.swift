/// The selection rule in force. `SelectionSettings()` is the documented default.
public enum Policy: String, Codable, CaseIterable, Sendable {
    /// `scoreShare` of the budget (half by default) by score, spread evenly over equal-count length
    /// bins; the rest uniformly at random.
    case scoreRandom = "score_random"
    /// The whole budget by score, spread over length bins.
    case scoreOnly = "score_only"
    /// The whole budget by score, no bins (the ablation that shows why bins matter).
    case scoreOnlyUnbinned = "score_only_unbinned"
    /// Uniformly at random (seeded hash of the id).
    case random
    /// Highest ψ = mean log[p(1−p)] under θ_bas: the max-uncertainty baseline.
    case uncertainty
}

public struct SelectionSettings: Equatable, Sendable {
    public var budget: Budget
    public var policy: Policy
    public var scoreFunction: ScoreFunction
    public var method: TrajectoryMethod
    public var bins: Int
    public var seed: Int64
    /// score_random's share of the budget taken by score (the `score_share` setting); the rest is
    /// drawn at random. ToV's Score+Random is ½.
    public var scoreShare: Double
    public static let defaultScoreShare = 0.5

    public init(budget: Budget = .fraction(0.05), policy: Policy = .scoreRandom, scoreFunction: ScoreFunction = .improvement,
                method: TrajectoryMethod = .A, bins: Int = 10, seed: Int64 = 0, scoreShare: Double = SelectionSettings.defaultScoreShare) {
        self.budget = budget
        self.policy = policy
        self.scoreFunction = scoreFunction
        self.method = method
        self.bins = bins
        self.seed = seed
        self.scoreShare = scoreShare
    }

    /// How many of a budget of `n` rows the policy takes by score, spread over the length bins: for
    /// score_random ⌊n · scoreShare⌋ (n/2 by default), for score_only all n. The one definition the
    /// reference `select` and the daemon's SQL plan both use.
    public func scoreRows(budget n: Int) -> Int {
        guard policy == .scoreRandom else { return n }
        // The ε keeps a product such as 0.29 · 100 = 28.999… from rounding down a whole row.
        return min(n, max(0, Int((Double(n) * scoreShare + 1e-9).rounded(.down))))
    }

    /// Throws with a message a person can act on.
    public func validate() throws {
        guard (1...100).contains(bins) else { throw SelectionError("bins must be between 1 and 100; got \(bins)") }
        guard scoreShare >= 0 && scoreShare <= 1 else { throw SelectionError("score_share must be in [0, 1]; got \(scoreShare)") }
        switch budget {
        case .rows(let n) where n < 0: throw SelectionError("budget rows must be ≥ 0; got \(n)")
        case .fraction(let f) where !(f > 0 && f <= 1): throw SelectionError("budget fraction must be in (0, 1]; got \(f)")
        default: break
        }
    }
}

/// A row's inputs to selection.
public struct ScoredRow: Equatable, Sendable, Codable {
    public var id: Int64
    /// φ, the ToV score.
    public var score: Double
    /// ψ = mean log[p(1−p)] of the response tokens under θ_bas.
    public var uncertainty: Double
    /// Number of response tokens φ averages over: the length the bins are made of.
    public var length: Int

    public init(id: Int64, score: Double, uncertainty: Double = 0, length: Int) {
        self.id = id
        self.score = score
        self.uncertainty = uncertainty
        self.length = length
    }
}
