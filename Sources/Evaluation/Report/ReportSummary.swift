import Foundation

/// The derived numbers both renderers show, computed once from an ``EvaluationReport``.
public struct ReportSummary: Sendable {
    /// Mean ± sample std of one grid cell over seeds.
    public struct Cell: Sendable, Equatable {
        public var mean: Double
        public var std: Double
        public var n: Int
    }

    /// A policy at its best learning rate, compared with the baseline at the baseline's best learning rate.
    public struct Best: Sendable, Equatable {
        public var policy: String
        public var learningRate: Double
        public var cell: Cell
        /// baseline − policy (positive: the policy's test loss is lower).
        public var improvement: Double
        /// improvement / baseline loss.
        public var relativeImprovement: Double
        /// improvement in units of the baseline's seed std at its best learning rate.
        public var improvementInBaselineStd: Double
        /// Share of (learning rate, seed) cells where the policy's loss is below the baseline's.
        public var winRate: Double
    }

    /// Agreement of the policy ranking between two learning rates.
    public struct RankAgreement: Sendable, Equatable {
        public var learningRateA: Double
        public var learningRateB: Double
        public var spearman: Double
        public var signAgreement: Double
    }

    public var policies: [String]
    public var learningRates: [Double]
    public var cells: [String: [Double: Cell]]
    /// Policies ordered by their best mean loss, lowest first.
    public var ranking: [Best]
    public var agreements: [RankAgreement]
    public var baseline: String

    public init(_ report: EvaluationReport) {
        policies = report.policies
        learningRates = report.learningRates
        baseline = report.baselinePolicy
        var cells: [String: [Double: Cell]] = [:]
        for p in policies {
            for lr in learningRates {
                let l = report.losses(policy: p, learningRate: lr)
                if !l.isEmpty { cells[p, default: [:]][lr] = Cell(mean: Stats.mean(l), std: Stats.std(l), n: l.count) }
            }
        }
        self.cells = cells

        func best(_ p: String) -> (Double, Cell)? {
            cells[p]?.min { $0.value.mean < $1.value.mean || ($0.value.mean == $1.value.mean && $0.key > $1.key) }
                .map { ($0.key, $0.value) }
        }
        let base = best(report.baselinePolicy)
        var ranking: [Best] = []
        for p in policies {
            guard let (lr, cell) = best(p) else { continue }
            let delta = base.map { $0.1.mean - cell.mean } ?? .nan
            let rel = base.map { delta / $0.1.mean } ?? .nan
            let inStd = base.map { $0.1.std > 0 ? delta / $0.1.std : .nan } ?? .nan
            var wins = 0, total = 0
            for run in report.runs where run.policy == p {
                if let b = report.runs.first(where: { $0.policy == report.baselinePolicy && $0.learningRate == run.learningRate && $0.seed == run.seed }),
                   run.testLoss.isFinite, b.testLoss.isFinite {
                    total += 1
                    if run.testLoss < b.testLoss { wins += 1 }
                }
            }
            ranking.append(Best(policy: p, learningRate: lr, cell: cell, improvement: delta, relativeImprovement: rel,
                                improvementInBaselineStd: inStd, winRate: total > 0 ? Double(wins) / Double(total) : .nan))
        }
        self.ranking = ranking.sorted { $0.cell.mean < $1.cell.mean }

        var agreements: [RankAgreement] = []
        for i in learningRates.indices {
            for j in learningRates.indices where j > i {
                let a = learningRates[i], b = learningRates[j]
                let both = policies.filter { cells[$0]?[a] != nil && cells[$0]?[b] != nil }
                let xa = both.map { cells[$0]![a]!.mean }, xb = both.map { cells[$0]![b]!.mean }
                agreements.append(RankAgreement(learningRateA: a, learningRateB: b,
                                                spearman: Stats.spearman(xa, xb),
                                                signAgreement: Stats.pairwiseSignAgreement(xa, xb)))
            }
        }
        self.agreements = agreements
    }

    /// Mean Spearman over all learning-rate pairs (nan if none is defined).
    public var meanSpearman: Double { Stats.mean(agreements.map(\.spearman).filter(\.isFinite)) }
}

/// Number formatting shared by the renderers: never prints "nan" or "inf".
enum Fmt {
    static func num(_ x: Double, _ digits: Int = 4) -> String {
        guard x.isFinite else { return "n/a" }
        return String(format: "%.\(digits)f", x)
    }

    static func signed(_ x: Double, _ digits: Int = 4) -> String {
        guard x.isFinite else { return "n/a" }
        return String(format: "%+.\(digits)f", x)
    }

    static func percent(_ x: Double, _ digits: Int = 1) -> String {
        guard x.isFinite else { return "n/a" }
        return String(format: "%.\(digits)f%%", x * 100)
    }

    static func signedPercent(_ x: Double, _ digits: Int = 2) -> String {
        guard x.isFinite else { return "n/a" }
        return String(format: "%+.\(digits)f%%", x * 100)
    }

    /// Learning rates as "3e-4".
    static func lr(_ x: Double) -> String {
        guard x.isFinite, x > 0 else { return x == 0 ? "0" : "n/a" }
        let e = Int(floor(log10(x)))
        let m = x / pow(10, Double(e))
        let ms = abs(m - m.rounded()) < 1e-9 ? String(Int(m.rounded())) : String(format: "%.2g", m)
        return "\(ms)e\(e)"
    }

    /// "mean ± std (n=3)"; one run has no spread, so it shows as "mean (n=1)" rather than "± 0.0000".
    static func meanStd(_ c: ReportSummary.Cell?) -> String {
        guard let c else { return "–" }
        return c.n > 1 ? "\(num(c.mean)) ± \(num(c.std)) (n=\(c.n))" : "\(num(c.mean)) (n=1)"
    }

    /// The same for loose values (reference rows).
    static func meanStd(_ values: [Double]) -> String {
        values.isEmpty ? "–" : meanStd(ReportSummary.Cell(mean: Stats.mean(values), std: Stats.std(values), n: values.count))
    }

    /// What the n of a cell counts, for the tables' captions.
    static let runsNote = "A scored policy runs once per scoring seed; random once per draw, so its n counts draws "
        + "and its ± is the spread of random selections."

    static func bytes(_ b: Int) -> String {
        if b < 1 << 20 { return String(format: "%.1f KiB", Double(b) / 1024) }
        if b < 1 << 30 { return String(format: "%.1f MiB", Double(b) / 1_048_576) }
        return String(format: "%.2f GiB", Double(b) / 1_073_741_824)
    }

    /// "ToV wall time / <method> wall time (summed over seeds): r" for each other method measured.
    static func costRatios(_ costs: [EvaluationReport.Cost]) -> [String] {
        let tov = costs.filter { $0.method == "ToV" }.reduce(0) { $0 + $1.wallSeconds }
        guard tov > 0 else { return [] }
        return EvaluationReport.unique(costs.map(\.method)).filter { $0 != "ToV" }.compactMap { method in
            let other = costs.filter { $0.method == method }.reduce(0) { $0 + $1.wallSeconds }
            return other > 0 ? String(format: "ToV wall time / %@ wall time (summed over seeds): %.2f.", method, tov / other) : nil
        }
    }

    static func seconds(_ s: Double) -> String {
        guard s.isFinite else { return "n/a" }
        if s < 120 { return String(format: "%.1f s", s) }
        if s < 7200 { return String(format: "%.1f min", s / 60) }
        return String(format: "%.2f h", s / 3600)
    }
}
