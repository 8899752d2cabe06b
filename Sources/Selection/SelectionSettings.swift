/// The selection rule in force. `SelectionSettings()` is the documented default.
public enum Policy: String, Codable, CaseIterable, Sendable {
    /// `scoreShare` of the budget (half by default) by score, spread evenly over equal-count length
    /// bins; the rest uniformly at random.
    case scoreRandom = "score_random"
    /// score_random with the rest of the budget drawn by n-gram importance (``NgramImportance``: rows
    /// whose words look like Z_val's more than like the pool's) instead of uniformly: issue 27's
    /// candidate, which finds the target's own rows in a pool where the surrogate's short context
    /// cannot see the instruction that marks them.
    case scoreDSIR = "score_dsir"
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
    /// score_random's (and score_dsir's) share of the budget taken by score (the `score_share`
    /// setting); the rest is drawn at random (by importance). ToV's Score+Random is ½.
    public var scoreShare: Double
    public static let defaultScoreShare = 0.5
    /// score_dsir since schema 14: it beat score_random with Z_val on all three dev targets (issue 27,
    /// docs/evaluation.md "Issue 27's candidates"); `tov.settings` of a new database starts with it.
    public static let defaultPolicy = Policy.scoreDSIR

    public init(budget: Budget = .fraction(0.05), policy: Policy = SelectionSettings.defaultPolicy, scoreFunction: ScoreFunction = .improvement,
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
    /// score_random and score_dsir ⌊n · scoreShare⌋ (n/2 by default), for score_only all n. The one
    /// definition the reference `select` and the daemon's SQL plan both use.
    public func scoreRows(budget n: Int) -> Int {
        guard policy == .scoreRandom || policy == .scoreDSIR else { return n }
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
    /// The row's n-gram log importance weight for the target (``NgramImportance``), which score_dsir
    /// draws by; 0 where nothing computed it.
    public var importance: Double

    public init(id: Int64, score: Double, uncertainty: Double = 0, length: Int, importance: Double = 0) {
        self.id = id
        self.score = score
        self.uncertainty = uncertainty
        self.length = length
        self.importance = importance
    }

    enum CodingKeys: String, CodingKey { case id, score, uncertainty, length, importance }

    /// Rows stored before the importance weight existed read as 0.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(Int64.self, forKey: .id), score: try c.decode(Double.self, forKey: .score),
                  uncertainty: try c.decode(Double.self, forKey: .uncertainty), length: try c.decode(Int.self, forKey: .length),
                  importance: try c.decodeIfPresent(Double.self, forKey: .importance) ?? 0)
    }
}
