import Foundation

/// One table over several `tovd evaluate` runs that differ in one setting each (ablations): for each
/// run, the scored policy and the baseline at their best learning rates, the improvement in percent
/// and in units of the baseline's seed spread, and the Z_val-only reference (descriptive: each run's own
/// report has the intervals).
public enum ComparisonReport {
    public struct Variant: Sendable {
        public var name: String
        public var report: EvaluationReport
        public init(name: String, report: EvaluationReport) {
            self.name = name
            self.report = report
        }
    }

    /// The settings of a run, with |Z_val| and the pool size added, keyed by their display names.
    static func settingsOf(_ report: EvaluationReport) -> [String: String] {
        var all = report.setup.settings
        if let z = report.setup.validationRows { all["Z_val rows"] = "\(z)" }
        if let p = report.setup.poolRows { all["pool rows"] = "\(p)" }
        // Table cells cannot hold a pipe (the evaluation names |U| that way).
        return Dictionary(uniqueKeysWithValues: all.map { ($0.key.replacingOccurrences(of: "|", with: ""), $0.value.replacingOccurrences(of: "|", with: "/")) })
    }

    /// Markdown: a title, the settings every variant shares, and one row per variant.
    public static func markdown(title: String, variants: [Variant], policy: String = "score_random") -> String {
        let settings = variants.map { settingsOf($0.report) }
        let keys = Set(settings.flatMap { Array($0.keys) }).sorted()
        // A key older runs do not record counts as shared when every run that records it agrees.
        let varying = keys.filter { key in Set(settings.compactMap { $0[key] }).count > 1 }
        let shared = keys.filter { !varying.contains($0) }

        var lines = ["# \(title)", ""]
        if !shared.isEmpty {
            lines.append("Shared: " + shared.map { key in "\(key) = \(settings.lazy.compactMap { $0[key] }.first ?? "—")" }.joined(separator: "; ") + ".")
            lines.append("")
        }
        let baseline = variants.first.map { $0.report.armQualified().baselinePolicy } ?? "random"
        lines.append("| variant | \(varying.isEmpty ? "settings" : varying.joined(separator: " | ")) | \(policy) loss | \(baseline) loss | Δ vs \(baseline) | in \(baseline)-std | θ0 + Z_val only |")
        lines.append("|" + String(repeating: "---|", count: 6 + max(varying.count, 1)))
        for (variant, values) in zip(variants, settings) {
            // The surrogate-sized proxy, when a run fine-tuned several.
            let restricted = variant.report.proxies.first.map { variant.report.restricted(toProxy: $0) } ?? variant.report
            // Reports of the issue-23 protocol have arms: compare within the primary arm (selection + Z_val).
            let report = restricted.armQualified()
            let summary = ReportSummary(report)
            let hasArms = report.baselinePolicy != restricted.baselinePolicy
            let primary = EvaluationArm.withZval.rawValue
            let scored = summary.ranking.first { $0.policy == (hasArms ? ProtocolAnalysis.name(policy, arm: primary) : policy) }
            let base = summary.ranking.first { $0.policy == report.baselinePolicy }
            let zvalOnly = hasArms ? summary.ranking.first { $0.policy == ProtocolAnalysis.name(ProtocolAnalysis.zvalOnly, arm: primary) }?.cell.mean
                : report.references.filter { $0.name.contains("Z_val") }.map { $0.testLoss }.min()
            let columns = varying.isEmpty ? ["—"] : varying.map { values[$0] ?? "—" }
            var cells = [variant.name] + columns
            cells.append(scored.map { cell($0.cell, lr: $0.learningRate) } ?? "—")
            cells.append(base.map { cell($0.cell, lr: $0.learningRate) } ?? "—")
            cells.append(scored.map { String(format: "%+.1f %%", -100 * $0.relativeImprovement) } ?? "—")
            cells.append(scored.map { String(format: "%.1f", $0.improvementInBaselineStd) } ?? "—")
            cells.append(zvalOnly.map { String(format: "%.3f", $0) } ?? "—")
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        lines.append("")
        lines.append("Losses are mean target test log-loss over seeds ± seed std at each policy's best reduced LR; "
            + "Δ < 0 means \(policy)'s mean loss is lower than \(baseline)'s (no interval here: see each run's report).")
        return lines.joined(separator: "\n") + "\n"
    }

    static func cell(_ cell: ReportSummary.Cell, lr: Double) -> String {
        String(format: "%.3f ± %.3f (LR %@)", cell.mean, cell.std, String(format: "%g", lr))
    }
}
