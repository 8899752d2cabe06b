import Foundation

/// Renders an ``EvaluationReport`` as GitHub-flavoured Markdown tables.
public enum MarkdownReport {
    public static func render(_ report: EvaluationReport) -> String {
        let s = ReportSummary(report)
        var out: [String] = []
        func table(_ header: [String], _ rows: [[String]]) {
            out.append("| " + header.joined(separator: " | ") + " |")
            out.append("|" + header.map { _ in "---" }.joined(separator: "|") + "|")
            for r in rows { out.append("| " + r.map(escape).joined(separator: " | ") + " |") }
            out.append("")
        }

        out.append("# \(escape(report.setup.title))")
        out.append("")
        var setup: [[String]] = []
        if let t = report.setup.targetSource { setup.append(["target source", t]) }
        if let n = report.setup.poolRows { setup.append(["pool rows", "\(n)"]) }
        if let n = report.setup.validationRows { setup.append(["Z_val rows", "\(n)"]) }
        if let n = report.setup.testRows { setup.append(["test rows", "\(n)"]) }
        if let n = report.setup.budgetRows { setup.append(["budget rows", "\(n)"]) }
        setup.append(["seeds", report.seeds.map(String.init).joined(separator: ", ")])
        for k in report.setup.settings.keys.sorted() { setup.append([k, report.setup.settings[k]!]) }
        table(["setting", "value"], setup)

        out.append("## Test loss per policy × learning rate")
        out.append("")
        out.append("Mean ± std over seeds of the target test log-loss (lower is better).")
        out.append("")
        table(["policy"] + s.learningRates.map { "LR \(Fmt.lr($0))" },
              s.policies.map { p in [p] + s.learningRates.map { Fmt.meanStd(s.cells[p]?[$0]) } })

        if !report.references.isEmpty {
            out.append("## Reference rows")
            out.append("")
            var groups: [String: [EvaluationReport.Reference]] = [:]
            let names = EvaluationReport.unique(report.references.map(\.name))
            for r in report.references { groups[r.name, default: []].append(r) }
            var rows: [[String]] = []
            for n in names {
                let rs = groups[n]!
                let lrs = Array(Set(rs.compactMap(\.learningRate))).sorted(by: >)
                if lrs.isEmpty {
                    let l = rs.map(\.testLoss).filter(\.isFinite)
                    rows.append([n, "–", "\(Fmt.num(Stats.mean(l))) ± \(Fmt.num(Stats.std(l)))"])
                } else {
                    for lr in lrs {
                        let l = rs.filter { $0.learningRate == lr }.map(\.testLoss).filter(\.isFinite)
                        rows.append([n, Fmt.lr(lr), "\(Fmt.num(Stats.mean(l))) ± \(Fmt.num(Stats.std(l)))"])
                    }
                }
            }
            table(["reference", "LR", "test loss"], rows)
        }

        out.append("## Best learning rate per policy")
        out.append("")
        out.append("Each policy at its own best LR; improvement is against `\(escape(s.baseline))` at its best LR "
                   + "(positive = lower loss), also in units of `\(escape(s.baseline))`'s seed std; "
                   + "win rate = share of (LR, seed) runs below `\(escape(s.baseline))` with the same LR and seed.")
        out.append("")
        table(["rank", "policy", "best LR", "test loss", "Δ vs \(s.baseline)", "relative", "in \(s.baseline) std", "win rate"],
              s.ranking.enumerated().map { i, b in
                  ["\(i + 1)", b.policy, Fmt.lr(b.learningRate), Fmt.meanStd(b.cell), Fmt.signed(b.improvement),
                   Fmt.signedPercent(b.relativeImprovement), Fmt.signed(b.improvementInBaselineStd, 2), Fmt.percent(b.winRate, 0)]
              })

        out.append("## Ranking agreement across learning rates")
        out.append("")
        out.append("Spearman ρ of the policies' mean losses between two LRs (average ranks for ties), and the "
                   + "share of policy pairs ordered the same way at both LRs. Mean ρ: \(Fmt.num(s.meanSpearman, 3)).")
        out.append("")
        table(["LR a", "LR b", "Spearman ρ", "pairwise sign agreement"],
              s.agreements.map { [Fmt.lr($0.learningRateA), Fmt.lr($0.learningRateB), Fmt.num($0.spearman, 3), Fmt.percent($0.signAgreement, 0)] })

        if !report.enrichment.isEmpty {
            out.append("## Target-source enrichment")
            out.append("")
            out.append("Share of target-source rows in each selection versus in the pool (ratio 1 = no enrichment).")
            out.append("")
            table(["policy", "target rows selected", "selected", "selection share", "pool share", "ratio"],
                  report.enrichment.map { e in
                      [e.policy, "\(e.targetInSelection)", "\(e.selection)", Fmt.percent(e.selectionShare, 2),
                       Fmt.percent(e.poolShare, 2), Fmt.num(e.ratio, 2) + "×"]
                  })
        }

        if let h = report.scoreHistogram, !h.counts.isEmpty {
            out.append("## Score distribution")
            out.append("")
            table(["score from", "to", "rows"], h.counts.indices.map { [Fmt.num(h.edges[$0]), Fmt.num(h.edges[$0 + 1]), "\(h.counts[$0])"] })
        }

        if !report.lengths.isEmpty {
            out.append("## Response length distributions")
            out.append("")
            table(["set", "rows", "mean tokens", "median tokens"],
                  report.lengths.map { [$0.name, "\($0.histogram.total)", Fmt.num($0.mean, 1), Fmt.num($0.median, 1)] })
        }

        out.append("## Run")
        out.append("")
        out.append("- wall time: \(Fmt.seconds(report.wallTimeSeconds))")
        out.append("- created: \(escape(report.createdAt))")
        out.append("- command: `\(report.commandLine.replacingOccurrences(of: "`", with: "'"))`")
        out.append("")
        return out.joined(separator: "\n")
    }

    /// Keeps user-provided names from breaking the table layout.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}
