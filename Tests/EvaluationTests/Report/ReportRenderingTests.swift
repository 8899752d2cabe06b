import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Evaluation

@Suite struct ReportRenderingTests {
    /// Numbers that must never reach a report.
    func hasNonFinite(_ s: String) -> Bool {
        let lower = s.lowercased()
        return lower.contains("nan") || lower.contains("inf") && !lower.contains("information")
    }

    @Test func summaryNumbers() throws {
        let r = SampleReport.make()
        let s = ReportSummary(r)
        #expect(s.policies == ["score_random", "score_only", "uncertainty", "random"])
        #expect(s.learningRates == [3e-4, 1e-4, 3e-5, 1e-5])
        #expect(s.ranking.first?.policy == "score_random")
        #expect(s.ranking.allSatisfy { $0.learningRate == 1e-4 })
        let random = try #require(s.ranking.first { $0.policy == "random" })
        #expect(random.improvement == 0)
    }

    @Test func markdownSections() {
        let md = MarkdownReport.render(SampleReport.make())
        for section in ["# ToV evaluation", "## Test loss per policy × learning rate", "## Reference rows",
                        "## Best learning rate per policy",
                        "## Target-source enrichment", "## Score distribution", "## Response length distributions", "## Run"] {
            #expect(md.contains(section), "missing \(section)")
        }
        #expect(md.contains("| score_random | 1e-4 |"))
        #expect(md.contains("LR 3e-4"))
        #expect(!hasNonFinite(md))
    }

    @Test func htmlIsSelfContainedWithSVG() throws {
        let html = HTMLReport.render(SampleReport.make())
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        for section in ["Test loss per policy × learning rate", "Reference rows", "Best learning rate per policy",
                        "Target-source enrichment"] {
            #expect(html.contains("<h2>\(section)</h2>"), "missing \(section)")
        }
        #expect(html.components(separatedBy: "<svg ").count - 1 == 5)
        #expect(html.components(separatedBy: "<svg ").count == html.components(separatedBy: "</svg>").count)
        #expect(!html.contains("<script"))
        #expect(!html.contains("src=\""))
        #expect(!hasNonFinite(html))
        // Every SVG is well-formed XML.
        var rest = html[...]
        while let start = rest.range(of: "<svg "), let end = rest.range(of: "</svg>", range: start.upperBound..<rest.endIndex) {
            let svg = String(rest[start.lowerBound..<end.upperBound])
            let parser = XMLParser(data: Data(svg.utf8))
            #expect(parser.parse(), "bad SVG: \(parser.parserError.map { "\($0)" } ?? "")")
            rest = rest[end.upperBound...]
        }
        if let dir = ProcessInfo.processInfo.environment["TOVD_SAMPLE_REPORT_DIR"] {
            try html.write(toFile: dir + "/sample-report.html", atomically: true, encoding: .utf8)
            try MarkdownReport.render(SampleReport.make()).write(toFile: dir + "/sample-report.md", atomically: true, encoding: .utf8)
        }
    }

    @Test func degenerateReportsStayFinite() {
        // One seed, one LR, a non-finite loss, no baseline rows, empty extras.
        let r = EvaluationReport(setup: .init(), runs: [
            .init(policy: "score_only", learningRate: 1e-4, seed: 1, testLoss: 2.0),
            .init(policy: "uncertainty", learningRate: 1e-4, seed: 1, testLoss: .nan),
            .init(policy: "x|y<z>", learningRate: 1e-4, seed: 1, testLoss: .infinity),
        ], references: [.init(name: "θ0", testLoss: .nan)], scoreHistogram: Histogram(values: [], bins: 3),
           lengths: [.init(name: "pool", lengths: [], edges: [0, 1])],
           enrichment: [.init(policy: "score_only", targetInSelection: 0, selection: 0, targetInPool: 0, pool: 0)],
           wallTimeSeconds: .nan, commandLine: "tovd evaluate")
        let md = MarkdownReport.render(r)
        let html = HTMLReport.render(r)
        #expect(!hasNonFinite(md))
        #expect(!hasNonFinite(html))
        #expect(html.contains("x|y&lt;z&gt;"))
        #expect(md.contains("x\\|y<z>"))
        let empty = EvaluationReport(setup: .init(), runs: [], wallTimeSeconds: 0, commandLine: "")
        #expect(!hasNonFinite(HTMLReport.render(empty)) && !hasNonFinite(MarkdownReport.render(empty)))
    }

    /// Issue 14, item 6: with one seed a cell has no spread, and says so instead of "± 0.0000"; random's
    /// cells count their draws; long policy names are slanted instead of overlapping.
    @Test func oneSeedCellsSayWhatTheirSpreadIsOver() {
        let runs: [EvaluationReport.Run] = [
            .init(policy: "score_only_unbinned", learningRate: 1e-4, seed: 0, testLoss: 2.0),
            .init(policy: "uncertainty", learningRate: 1e-4, seed: 0, testLoss: 2.4),
            .init(policy: "less", learningRate: 1e-4, seed: 0, testLoss: 2.1),
            .init(policy: "score_random", learningRate: 1e-4, seed: 0, testLoss: 2.05),
            .init(policy: "score_only", learningRate: 1e-4, seed: 0, testLoss: 2.02),
        ] + (0..<4).map { .init(policy: "random", learningRate: 1e-4, seed: UInt64($0), testLoss: 2.3 + 0.01 * Double($0)) }
        let r = EvaluationReport(setup: .init(settings: ["scoring seeds": "0", "random draws": "4 per scoring seed"]), runs: runs,
                                 references: [.init(name: "θ0 (no fine-tuning)", testLoss: 5.1)], wallTimeSeconds: 1, commandLine: "")
        let md = MarkdownReport.render(r), html = HTMLReport.render(r)
        for text in [md, html] {
            #expect(!text.contains("± 0.0000"))
            #expect(text.contains("2.0000 (n=1)") && text.contains("(n=4)"))
            #expect(!text.contains("seeds | 0, 1, 2, 3") && !text.contains("<th>seeds</th><td>0, 1, 2, 3"))
        }
        #expect(html.contains("rotate(-35"))
        // Short labels that fit stay horizontal.
        let short = EvaluationReport(setup: .init(), runs: [.init(policy: "a", learningRate: 1e-4, seed: 0, testLoss: 2),
                                                            .init(policy: "random", learningRate: 1e-4, seed: 0, testLoss: 3)],
                                     wallTimeSeconds: 1, commandLine: "")
        #expect(!HTMLReport.render(short).contains("rotate(-35"))
    }

    @Test func reportRoundTripsThroughJSON() throws {
        let r = SampleReport.make()
        let back = try JSONDecoder().decode(EvaluationReport.self, from: JSONEncoder().encode(r))
        #expect(back == r)
    }
}
