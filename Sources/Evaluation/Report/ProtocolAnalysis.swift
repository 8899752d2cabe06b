import Foundation

/// The comparisons `tovd evaluate` reports, each with a 95 % interval, and the headline under a rule fixed
/// here before any run (``headlineRule``).
///
/// Every difference is baseline loss − policy loss (positive: the policy's target test loss is lower),
/// paired by seed: seed s fixes the policy's scores and selection, an independent random-baseline draw,
/// and the proxy's data order, which every arm of the seed shares.
public struct ProtocolAnalysis: Codable, Sendable, Equatable {
    /// The policy name of the "Z_val alone" runs (arm with_zval, no selected rows).
    public static let zvalOnly = "zval_only"
    /// The selection the headline is about: the daemon's default policy.
    public static let headlinePolicy = "score_random"
    /// The headline's runs: the daemon's default policy from every θ0 the run scores with (the first θ0's
    /// keep the plain name, the others' are "score_random (<θ0> θ0)"), so each θ0's selection is judged alike.
    static func isHeadline(_ policy: String) -> Bool {
        policy == headlinePolicy || ScoringTheta0.allCases.contains { $0.label(.headline) == policy }
    }

    public static let headlineRule = """
        Headline rule (fixed in ProtocolAnalysis before the runs): the primary comparisons are, on each proxy, \
        Z_val + score_random (from each θ0 of the run) vs Z_val + random and vs Z_val alone; selection alone vs \
        random alone is secondary. \
        Each is judged on the tuned comparison (each side at the reduced LR where its mean target test loss over \
        seeds is lowest) by a 95 % paired-t interval over seeds of the difference in test loss. The words follow \
        the interval: "better" only if it lies above zero and no LR of the grid has its interval below zero, \
        "worse" symmetrically, otherwise "no difference shown". Every LR of the grid is reported beside it, \
        with whether its verdict agrees.
        """

    public struct Comparison: Codable, Sendable, Equatable {
        public var proxy: String
        public var arm: String
        public var policy: String
        public var baseline: String
        /// The LR both sides ran at; nil for the tuned comparison (see the two LRs below).
        public var learningRate: Double?
        public var policyLearningRate: Double
        public var baselineLearningRate: Double
        public var policyMean: Double
        public var baselineMean: Double
        /// baseline − policy, paired by seed.
        public var interval: Interval
        public var verdict: Interval.Verdict
        /// One sentence generated from the interval.
        public var wording: String
    }

    public struct Headline: Codable, Sendable, Equatable {
        public var primary: Bool
        public var tuned: Comparison
        public var perLearningRate: [Comparison]
        /// Every per-LR verdict equals the tuned one.
        public var learningRatesAgree: Bool
        /// The verdict under ``headlineRule``.
        public var verdict: Interval.Verdict
        public var sentence: String
    }

    public var rule: String
    public var headlines: [Headline]
    /// Every policy against every baseline of its arm, per LR and tuned.
    public var comparisons: [Comparison]

    public init(_ report: EvaluationReport) {
        rule = Self.headlineRule
        var comparisons: [Comparison] = [], headlines: [Headline] = []
        let proxies = report.proxies.isEmpty ? [nil] : report.proxies.map(Optional.some)
        for proxy in proxies {
            let proxyRuns = report.runs.filter { $0.proxy == proxy && $0.arm != nil }
            for arm in EvaluationReport.unique(proxyRuns.compactMap(\.arm)) {
                let runs = proxyRuns.filter { $0.arm == arm }
                let policies = EvaluationReport.unique(runs.map(\.policy))
                let baselines = ["random", Self.zvalOnly].filter(policies.contains)
                for baseline in baselines {
                    for policy in policies where policy != baseline && !(baseline == "random" && policy == Self.zvalOnly) {
                        let tuned = Self.compare(runs, proxy: proxy ?? "", arm: arm, policy: policy, baseline: baseline, learningRate: nil)
                        let perLR = report.learningRates.compactMap {
                            Self.compare(runs, proxy: proxy ?? "", arm: arm, policy: policy, baseline: baseline, learningRate: $0)
                        }
                        guard let tuned else { continue }
                        comparisons.append(tuned)
                        comparisons += perLR
                        if Self.isHeadline(policy) {
                            headlines.append(Self.headline(tuned: tuned, perLR: perLR, primary: arm == EvaluationArm.withZval.rawValue))
                        }
                    }
                }
            }
        }
        self.comparisons = comparisons
        self.headlines = headlines.sorted { $0.primary && !$1.primary }
    }

    /// The paired comparison at one LR, or tuned (each side at its best mean LR) when `learningRate` is nil.
    static func compare(_ runs: [EvaluationReport.Run], proxy: String, arm: String, policy: String, baseline: String,
                        learningRate: Double?) -> Comparison? {
        func bestLR(_ p: String) -> Double? {
            let lrs = Set(runs.filter { $0.policy == p }.map(\.learningRate))
            return lrs.min { a, b in
                let ma = Stats.mean(bySeed(p, a).values.map { $0 }), mb = Stats.mean(bySeed(p, b).values.map { $0 })
                return ma < mb || (ma == mb && a > b)
            }
        }
        func bySeed(_ p: String, _ lr: Double) -> [UInt64: Double] {
            Dictionary(runs.filter { $0.policy == p && $0.learningRate == lr && $0.testLoss.isFinite }.map { ($0.seed, $0.testLoss) },
                       uniquingKeysWith: { a, _ in a })
        }
        guard let policyLR = learningRate ?? bestLR(policy), let baselineLR = learningRate ?? bestLR(baseline) else { return nil }
        let a = bySeed(policy, policyLR), b = bySeed(baseline, baselineLR)
        let seeds = Set(a.keys).intersection(b.keys).sorted()
        guard !seeds.isEmpty else { return nil }
        let pl = seeds.map { a[$0]! }, bl = seeds.map { b[$0]! }
        let interval = Stats.pairedInterval(bl, pl)
        let bm = Stats.mean(bl)
        var c = Comparison(proxy: proxy, arm: arm, policy: policy, baseline: baseline, learningRate: learningRate,
                           policyLearningRate: policyLR, baselineLearningRate: baselineLR, policyMean: Stats.mean(pl), baselineMean: bm,
                           interval: interval, verdict: interval.verdict, wording: "")
        c.wording = wording(c)
        return c
    }

    static func name(_ policy: String, arm: String) -> String {
        if policy == zvalOnly { return "Z_val alone" }
        return arm == EvaluationArm.withZval.rawValue ? "Z_val + \(policy)" : "\(policy) alone"
    }

    static func percent(_ x: Double) -> String { String(format: "%+.2f %%", 100 * x) }

    /// The sentence a report may print for a comparison: its words follow the interval.
    static func wording(_ c: Comparison, verdict: Interval.Verdict? = nil) -> String {
        let a = name(c.policy, arm: c.arm), b = name(c.baseline, arm: c.arm)
        let i = c.interval, scale = c.baselineMean
        let ci = i.lower.isFinite
            ? "95 % CI \(percent(i.lower / scale)) to \(percent(i.upper / scale)), paired t over \(i.n) seeds"
            : "\(i.n) seed\(i.n == 1 ? "" : "s"), no interval"
        let size = "\(percent(i.estimate / scale)) of \(b)'s test loss (\(ci))"
        switch verdict ?? c.verdict {
        case .better: return "\(a) is better than \(b): its test loss is lower by \(size)."
        case .worse: return "\(a) is worse than \(b): its test loss is higher; difference \(size)."
        case .inconclusive: return "No difference shown between \(a) and \(b): \(size); the interval includes 0."
        case .insufficient: return "Too few seeds to compare \(a) with \(b): \(size)."
        }
    }

    static func headline(tuned: Comparison, perLR: [Comparison], primary: Bool) -> Headline {
        let agree = perLR.allSatisfy { $0.verdict == tuned.verdict }
        var verdict = tuned.verdict
        // The rule: a direction is claimed only if no LR of the grid points the other way with its interval.
        if verdict == .better && perLR.contains(where: { $0.verdict == .worse }) { verdict = .inconclusive }
        if verdict == .worse && perLR.contains(where: { $0.verdict == .better }) { verdict = .inconclusive }
        var sentence = (primary ? "Primary" : "Secondary") + " (\(tuned.proxy), tuned LRs \(Fmt.lr(tuned.policyLearningRate)) / \(Fmt.lr(tuned.baselineLearningRate))): "
            + wording(tuned, verdict: verdict)
        let lrVerdicts = perLR.map { "\(Fmt.lr($0.learningRate ?? 0)): \($0.verdict.rawValue)" }.joined(separator: ", ")
        sentence += agree ? " Every LR of the grid agrees (\(lrVerdicts))." : " The LRs of the grid do not all agree (\(lrVerdicts))."
        return Headline(primary: primary, tuned: tuned, perLearningRate: perLR, learningRatesAgree: agree, verdict: verdict, sentence: sentence)
    }
}

/// How the target was held out, for the report: what was excluded and the overlap measured on the split.
public struct HeldOutReport: Codable, Sendable, Equatable {
    public var targetDataset: String
    public var siblingSubtasksExcluded: [String]
    public var siblingRowsExcluded: Int
    public var targetContextGroups: Int
    public var targetRowsWithoutContext: Int
    public var targetRowsDroppedAtBoundaries: Int
    public var contaminatedRowsSkipped: Int
    public var overlap: HeldOutSplit.Overlap

    public init(_ split: HeldOutSplit, overlap: HeldOutSplit.Overlap) {
        targetDataset = split.targetDataset
        siblingSubtasksExcluded = split.siblingSubtasks
        siblingRowsExcluded = split.siblingRows
        targetContextGroups = split.targetGroups
        targetRowsWithoutContext = split.targetRowsWithoutContext
        targetRowsDroppedAtBoundaries = split.targetRowsDropped
        contaminatedRowsSkipped = split.contaminatedRowsSkipped
        self.overlap = overlap
    }
}
