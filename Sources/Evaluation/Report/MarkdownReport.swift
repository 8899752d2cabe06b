import Foundation

/// Renders an ``EvaluationReport`` as GitHub-flavoured Markdown tables.
public enum MarkdownReport {
    public static func render(_ original: EvaluationReport) -> String {
        // Runs renamed by arm, so no grid cell mixes selection + Z_val with the selection alone.
        let full = original.armQualified()
        // The main tables are about the first proxy; the others follow.
        let proxies = full.proxies
        let report = proxies.first.map { full.restricted(toProxy: $0) } ?? full
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
        if report.setup.settings["scoring seeds"] == nil { setup.append(["seeds", report.seeds.map(String.init).joined(separator: ", ")]) }
        for k in report.setup.settings.keys.sorted() { setup.append([k, report.setup.settings[k]!]) }
        table(["setting", "value"], setup)

        for section in original.protocolSections() {
            out.append("## \(section.title)")
            out.append("")
            for p in section.paragraphs { out.append(p); out.append("") }
            for t in section.tables { table(t.header, t.rows) }
        }

        out.append("## Test loss per policy × learning rate" + (proxies.count > 1 ? " (proxy \(escape(proxies[0])))" : ""))
        out.append("")
        out.append("Target test log-loss (lower is better): mean ± sample std over the cell's n runs. " + Fmt.runsNote)
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
                    rows.append([n, "–", Fmt.meanStd(l)])
                } else {
                    for lr in lrs {
                        let l = rs.filter { $0.learningRate == lr }.map(\.testLoss).filter(\.isFinite)
                        rows.append([n, Fmt.lr(lr), Fmt.meanStd(l)])
                    }
                }
            }
            table(["reference", "LR", "test loss"], rows)
        }

        out.append("## Best learning rate per policy")
        out.append("")
        out.append("Each policy at its own best LR, against `\(escape(s.baseline))` at its best LR (positive = lower loss); "
                   + "descriptive only: the intervals are in the comparison tables above.")
        out.append("")
        table(["rank", "policy", "best LR", "test loss", "Δ vs \(s.baseline)", "relative"],
              s.ranking.enumerated().map { i, b in
                  ["\(i + 1)", b.policy, Fmt.lr(b.learningRate), Fmt.meanStd(b.cell), Fmt.signed(b.improvement),
                   Fmt.signedPercent(b.relativeImprovement)]
              })

        if proxies.count > 1 {
            out.append("## The same selections fine-tuning other proxy sizes")
            out.append("")
            out.append("Relative loss reduction vs `\(escape(s.baseline))` (each at its best LR) per proxy; kept = the other "
                       + "proxy's reduction / the \(escape(proxies[0])) proxy's (1 = the same gain). Descriptive; intervals above.")
            out.append("")
            let summaries = proxies.map { ReportSummary(full.restricted(toProxy: $0)) }
            let header = ["policy"] + proxies.map { "Δ, proxy \($0)" } + proxies.dropFirst().map { "kept, \($0)" }
            table(header, s.ranking.filter { $0.policy != s.baseline }.map { b in
                let gains = summaries.map { $0.ranking.first { $0.policy == b.policy }?.relativeImprovement ?? .nan }
                return [b.policy] + gains.map { Fmt.signedPercent($0) } + gains.dropFirst().map { Fmt.num($0 / gains[0], 2) }
            })
            for proxy in proxies.dropFirst() {
                let other = ReportSummary(full.restricted(toProxy: proxy))
                out.append("### Proxy \(escape(proxy)): test loss per policy × learning rate")
                out.append("")
                table(["policy"] + other.learningRates.map { "LR \(Fmt.lr($0))" },
                      other.policies.map { p in [p] + other.learningRates.map { Fmt.meanStd(other.cells[p]?[$0]) } })
                let refs = full.references.filter { $0.proxy == proxy }
                if !refs.isEmpty {
                    table(["reference", "LR", "test loss"], refs.map { [$0.name, $0.learningRate.map(Fmt.lr) ?? "–", Fmt.meanStd([$0.testLoss])] })
                }
                table(["rank", "policy", "best LR", "test loss", "relative vs \(other.baseline)"],
                      other.ranking.enumerated().map { i, b in
                          ["\(i + 1)", b.policy, Fmt.lr(b.learningRate), Fmt.meanStd(b.cell), Fmt.signedPercent(b.relativeImprovement)]
                      })
            }
        }

        if !report.enrichment.isEmpty {
            out.append("## Target-source enrichment")
            out.append("")
            out.append("Share of target-source rows in each selection versus in the pool (ratio 1 = no enrichment); when the pool "
                       + "holds rows of the target subtask itself, the same for those (scoring seed 0, first draw).")
            out.append("")
            let subtask = report.enrichment.contains { $0.subtaskRatio != nil }
            let clustered = report.enrichment.contains { $0.clusters != nil }
            table(["policy", "target-source rows selected", "selected", "selection share", "pool share", "ratio"]
                    + (subtask ? ["target-subtask rows selected", "subtask ratio"] : [])
                    + (clustered ? ["text clusters", "largest cluster"] : []),
                  report.enrichment.map { e in
                      [e.policy, "\(e.targetInSelection)", "\(e.selection)", Fmt.percent(e.selectionShare, 2),
                       Fmt.percent(e.poolShare, 2), Fmt.num(e.ratio, 2) + "×"]
                          + (subtask ? ["\(e.subtaskInSelection ?? 0) of \(e.subtaskInPool ?? 0)", Fmt.num(e.subtaskRatio ?? .nan, 2) + "×"] : [])
                          + (clustered ? ["\(e.clusters ?? 0)", "\(e.largestCluster ?? 0)"] : [])
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
