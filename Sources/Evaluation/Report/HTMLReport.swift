import Foundation

/// Renders an ``EvaluationReport`` as one self-contained HTML file: inline CSS and inline SVG charts,
/// no scripts and no external resources, so it can be attached to a ticket or opened offline.
public enum HTMLReport {
    public static func render(_ original: EvaluationReport) -> String {
        // Runs renamed by arm, so no grid cell mixes selection + Z_val with the selection alone.
        let full = original.armQualified()
        // Charts and the main tables are about the first proxy; the others get tables.
        let proxies = full.proxies
        let report = proxies.first.map { full.restricted(toProxy: $0) } ?? full
        let s = ReportSummary(report)
        let e = SVGChart.esc
        let color = Dictionary(uniqueKeysWithValues: s.policies.enumerated().map { ($1, SVGChart.palette[$0 % SVGChart.palette.count]) })
        var body: [String] = []

        body.append("<h1>\(e(report.setup.title))</h1>")
        var setup: [(String, String)] = []
        if let t = report.setup.targetSource { setup.append(("target source", t)) }
        if let n = report.setup.poolRows { setup.append(("pool rows", "\(n)")) }
        if let n = report.setup.validationRows { setup.append(("Z_val rows", "\(n)")) }
        if let n = report.setup.testRows { setup.append(("test rows", "\(n)")) }
        if let n = report.setup.budgetRows { setup.append(("budget rows", "\(n)")) }
        if report.setup.settings["scoring seeds"] == nil { setup.append(("seeds", report.seeds.map(String.init).joined(separator: ", "))) }
        for k in report.setup.settings.keys.sorted() { setup.append((k, report.setup.settings[k]!)) }
        setup.append(("wall time", Fmt.seconds(report.wallTimeSeconds)))
        body.append("<table class=\"kv\">" + setup.map { "<tr><th>\(e($0.0))</th><td>\(e($0.1))</td></tr>" }.joined() + "</table>")
        for section in original.protocolSections() {
            body.append("<h2>\(e(section.title))</h2>")
            for p in section.paragraphs { body.append("<p>\(inline(p))</p>") }
            for t in section.tables { body.append(table(t.header, t.rows)) }
        }

        // MARK: Charts
        var charts: [String] = []
        let series = s.policies.map { p in
            SVGChart.Series(name: p, color: color[p]!, points: s.learningRates.compactMap { lr in
                s.cells[p]?[lr].map { SVGChart.Point(x: lr, y: $0.mean, err: $0.std) }
            })
        }
        var refLines: [(name: String, y: Double, color: String)] = []
        var refSeries: [SVGChart.Series] = []
        for (i, name) in EvaluationReport.unique(report.references.map(\.name)).enumerated() {
            let rs = report.references.filter { $0.name == name && $0.testLoss.isFinite }
            let c = ["#555555", "#999999", "#bcbd22", "#7f7f7f"][i % 4]
            if rs.allSatisfy({ $0.learningRate == nil }) {
                refLines.append((name, Stats.mean(rs.map(\.testLoss)), c))
            } else {
                let lrs = Array(Set(rs.compactMap(\.learningRate))).sorted()
                refSeries.append(SVGChart.Series(name: name, color: c, points: lrs.map { lr in
                    let l = rs.filter { $0.learningRate == lr }.map(\.testLoss)
                    return SVGChart.Point(x: lr, y: Stats.mean(l), err: Stats.std(l))
                }, dashed: true))
            }
        }
        charts.append(figure(SVGChart(title: "Test loss vs learning rate (mean ± std over runs)",
                                      xLabel: "learning rate (log scale)", yLabel: "target test log-loss")
                                .linePlot(series + refSeries, references: refLines, xLog: true),
                             caption: "Lower is better. Dashed: reference rows."))

        let others = s.ranking.filter { $0.policy != s.baseline }
        if !others.isEmpty {
            let bars = others.map { SVGChart.Bar(label: $0.policy, value: $0.relativeImprovement * 100, color: color[$0.policy]!) }
            var chart = SVGChart(title: "Improvement vs \(s.baseline) at each policy's best LR",
                                 xLabel: "policy", yLabel: "relative loss reduction (%)")
            chart.right = 24
            charts.append(figure(chart.barChart(bars, valueFormat: { String(format: "%+.2f%%", $0) }),
                                 caption: "(\(s.baseline) − policy) / \(s.baseline), each at its own best LR (means; the intervals are in the comparison tables)."))
        }

        if let h = report.scoreHistogram, !h.counts.isEmpty {
            charts.append(figure(SVGChart(title: "ToV score distribution (pool)", xLabel: "score φ", yLabel: "rows")
                                    .histogram(h, color: "#1f77b4"), caption: "\(h.total) scored rows."))
        }

        if !report.lengths.isEmpty {
            let lengthSeries = report.lengths.enumerated().map { i, d -> SVGChart.Series in
                let total = Double(max(d.histogram.total, 1))
                let pts = d.histogram.counts.indices.map { j in
                    SVGChart.Point(x: (d.histogram.edges[j] + d.histogram.edges[j + 1]) / 2, y: Double(d.histogram.counts[j]) / total * 100)
                }
                let c = d.name == "pool" ? "#444444" : (color[d.name] ?? SVGChart.palette[i % SVGChart.palette.count])
                return SVGChart.Series(name: d.name, color: c, points: pts, dashed: d.name == "pool")
            }
            charts.append(figure(SVGChart(title: "Response length: selection vs pool", xLabel: "response tokens (bin centre)",
                                          yLabel: "share of rows (%)").linePlot(lengthSeries, xLog: false),
                                 caption: report.lengths.map { "\($0.name): mean \(Fmt.num($0.mean, 1)), median \(Fmt.num($0.median, 1))" }.joined(separator: "; ")))
        }

        if !report.enrichment.isEmpty {
            let bars = report.enrichment.map { SVGChart.Bar(label: $0.policy, value: $0.selectionShare * 100, color: color[$0.policy] ?? "#1f77b4") }
            let pool = report.enrichment.first.map { $0.poolShare * 100 } ?? .nan
            charts.append(figure(SVGChart(title: "Target-source share of the selection", xLabel: "policy", yLabel: "target-source rows (%)")
                                    .barChart(bars, reference: ("pool share", pool), valueFormat: { String(format: "%.1f%%", $0) }),
                                 caption: "Dashed: the target source's share of the whole pool."))
        }
        body.append("<div class=\"charts\">" + charts.joined(separator: "\n") + "</div>")

        // MARK: Tables
        body.append("<h2>Test loss per policy × learning rate</h2>")
        body.append(table(["policy"] + s.learningRates.map { "LR \(Fmt.lr($0))" },
                          s.policies.map { p in [p] + s.learningRates.map { lr in
                              let best = s.ranking.first { $0.policy == p }?.learningRate == lr
                              return (best ? "<b>" : "") + e(Fmt.meanStd(s.cells[p]?[lr])) + (best ? "</b>" : "")
                          } }, rawCells: true))
        body.append("<p class=\"note\">Mean ± sample std over the cell's n runs; bold = the policy's best LR. \(e(Fmt.runsNote))</p>")

        if proxies.count > 1 {
            body.append("<h2>The same selections fine-tuning other proxy sizes</h2>")
            let summaries = proxies.map { ReportSummary(full.restricted(toProxy: $0)) }
            body.append(table(["policy"] + proxies.map { "Δ, proxy \($0)" } + proxies.dropFirst().map { "kept, \($0)" },
                              s.ranking.filter { $0.policy != s.baseline }.map { b in
                                  let gains = summaries.map { $0.ranking.first { $0.policy == b.policy }?.relativeImprovement ?? .nan }
                                  return [b.policy] + gains.map { Fmt.signedPercent($0) } + gains.dropFirst().map { Fmt.num($0 / gains[0], 2) }
                              }))
            body.append("<p class=\"note\">Relative loss reduction vs \(e(s.baseline)) at each policy's best LR, per proxy; kept = larger proxy's reduction / the \(e(proxies[0])) proxy's.</p>")
            for (proxy, other) in zip(proxies, summaries).dropFirst() {
                body.append("<h3>Proxy \(e(proxy))</h3>")
                body.append(table(["policy"] + other.learningRates.map { "LR \(Fmt.lr($0))" },
                                  other.policies.map { p in [p] + other.learningRates.map { Fmt.meanStd(other.cells[p]?[$0]) } }))
                let refs = full.references.filter { $0.proxy == proxy }
                if !refs.isEmpty {
                    body.append(table(["reference", "LR", "test loss"], refs.map { [$0.name, $0.learningRate.map(Fmt.lr) ?? "–", Fmt.meanStd([$0.testLoss])] }))
                }
            }
        }

        if !report.references.isEmpty {
            body.append("<h2>Reference rows</h2>")
            var rows: [[String]] = []
            for name in EvaluationReport.unique(report.references.map(\.name)) {
                let rs = report.references.filter { $0.name == name }
                let lrs = Array(Set(rs.compactMap(\.learningRate))).sorted(by: >)
                for lr in lrs.isEmpty ? [nil] : lrs.map(Optional.some) {
                    let l = rs.filter { $0.learningRate == lr }.map(\.testLoss).filter(\.isFinite)
                    rows.append([name, lr.map(Fmt.lr) ?? "–", Fmt.meanStd(l)])
                }
            }
            body.append(table(["reference", "LR", "test loss"], rows))
        }

        body.append("<h2>Best learning rate per policy</h2>")
        body.append(table(["rank", "policy", "best LR", "test loss", "Δ vs \(s.baseline)", "relative"],
                          s.ranking.enumerated().map { i, b in
                              ["\(i + 1)", b.policy, Fmt.lr(b.learningRate), Fmt.meanStd(b.cell), Fmt.signed(b.improvement),
                               Fmt.signedPercent(b.relativeImprovement)]
                          }))
        body.append("<p class=\"note\">Descriptive: the intervals are in the comparison tables above.</p>")

        if !report.enrichment.isEmpty {
            body.append("<h2>Target-source enrichment</h2>")
            let subtask = report.enrichment.contains { $0.subtaskRatio != nil }
            let clustered = report.enrichment.contains { $0.clusters != nil }
            body.append(table(["policy", "target-source rows selected", "selected", "selection share", "pool share", "ratio"]
                                + (subtask ? ["target-subtask rows selected", "subtask ratio"] : [])
                                + (clustered ? ["text clusters", "largest cluster"] : []),
                              report.enrichment.map { x in
                                  [x.policy, "\(x.targetInSelection)", "\(x.selection)", Fmt.percent(x.selectionShare, 2),
                                   Fmt.percent(x.poolShare, 2), Fmt.num(x.ratio, 2) + "×"]
                                      + (subtask ? ["\(x.subtaskInSelection ?? 0) of \(x.subtaskInPool ?? 0)", Fmt.num(x.subtaskRatio ?? .nan, 2) + "×"] : [])
                                      + (clustered ? ["\(x.clusters ?? 0)", "\(x.largestCluster ?? 0)"] : [])
                              }))
        }

        body.append("<p class=\"foot\">Created \(e(report.createdAt)) · <code>\(e(report.commandLine))</code></p>")

        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(e(report.setup.title))</title>
        <style>
        body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
        h1{font-size:24px;margin:0 0 12px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
        table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #ddd;padding:4px 9px;text-align:right}
        th{background:#f4f6f8}td:first-child,th:first-child{text-align:left}table.kv td,td.t{text-align:left}
        .charts{display:flex;flex-wrap:wrap;gap:14px;margin-top:14px}figure{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:6px;background:#fff}
        figcaption{font-size:12px;color:#555;max-width:540px;padding:2px 6px 4px}
        svg text{font-family:inherit}.ct{font-size:14px;font-weight:600;fill:#222}.tl{font-size:11px;fill:#555}.al{font-size:12px;fill:#333}
        .lg{font-size:12px;fill:#333}.vl{font-size:11px;fill:#222}.grid{stroke:#eee;stroke-width:1}.axis{stroke:#888;stroke-width:1}
        .note,.foot{font-size:12px;color:#666}code{font-size:12px;background:#f4f4f4;padding:1px 4px}
        </style></head><body>
        \(body.joined(separator: "\n"))
        </body></html>

        """
    }

    /// Escapes a paragraph and turns its Markdown `**bold**` and `code` spans into HTML.
    static func inline(_ text: String) -> String {
        var out = SVGChart.esc(text)
        for (mark, open, close) in [("**", "<b>", "</b>"), ("`", "<code>", "</code>")] {
            var parts = out.components(separatedBy: mark)
            guard parts.count >= 3 else { continue }
            out = parts.removeFirst()
            for (i, part) in parts.enumerated() { out += (i % 2 == 0 ? (i == parts.count - 1 ? mark : open) : close) + part }
        }
        return out
    }

    static func figure(_ svg: String, caption: String) -> String {
        "<figure>\n\(svg)\n<figcaption>\(SVGChart.esc(caption))</figcaption></figure>"
    }

    static func table(_ header: [String], _ rows: [[String]], rawCells: Bool = false) -> String {
        let e = SVGChart.esc
        var s = "<table><tr>" + header.map { "<th>\(e($0))</th>" }.joined() + "</tr>"
        for r in rows {
            s += "<tr>" + r.enumerated().map { i, c in
                // Names read better left-aligned, numbers right-aligned.
                let text = c.first.map { $0.isLetter && c != "n/a" } ?? false
                return "<td\(text ? " class=\"t\"" : "")>\(rawCells && i > 0 ? c : e(c))</td>"
            }.joined() + "</tr>"
        }
        return s + "</table>"
    }
}
