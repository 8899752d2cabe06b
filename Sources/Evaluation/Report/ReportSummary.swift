import Foundation

/// The derived numbers both renderers show, computed once from an ``EvaluationReport``.
public struct ReportSummary: Sendable {
    /// Mean ± sample std of one grid cell over seeds.
    public struct Cell: Sendable, Equatable {
        public var mean: Double
        public var std: Double
        public var n: Int
    }

    /// A policy at its best learning rate, compared with the baseline at the baseline's best learning rate
    /// (descriptive; the intervals are in ``ProtocolAnalysis``).
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
    }

    public var policies: [String]
    public var learningRates: [Double]
    public var cells: [String: [Double: Cell]]
    /// Policies ordered by their best mean loss, lowest first.
    public var ranking: [Best]
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
            ranking.append(Best(policy: p, learningRate: lr, cell: cell, improvement: delta, relativeImprovement: rel,
                                improvementInBaselineStd: inStd))
        }
        self.ranking = ranking.sorted { $0.cell.mean < $1.cell.mean }
    }
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
    static let runsNote = "Every policy, random included, runs once per seed (in old-protocol reports random ran once per draw, "
        + "several per seed), so n counts seeds and ± is their spread."

    static func bytes(_ b: Int) -> String {
        if b < 1 << 20 { return String(format: "%.1f KiB", Double(b) / 1024) }
        if b < 1 << 30 { return String(format: "%.1f MiB", Double(b) / 1_048_576) }
        return String(format: "%.2f GiB", Double(b) / 1_073_741_824)
    }

    static func seconds(_ s: Double) -> String {
        guard s.isFinite else { return "n/a" }
        if s < 120 { return String(format: "%.1f s", s) }
        if s < 7200 { return String(format: "%.1f min", s / 60) }
        return String(format: "%.2f h", s / 3600)
    }
}
