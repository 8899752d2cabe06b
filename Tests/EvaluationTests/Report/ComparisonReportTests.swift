import Testing
@testable import Evaluation

@Suite("Comparison of evaluation runs")
struct ComparisonReportTests {
    @Test func tableShowsOnlyTheSettingsThatDifferAndOneRowPerVariant() {
        var methodB = SampleReport.make()
        methodB.setup.settings["method"] = "B"
        let markdown = ComparisonReport.markdown(title: "Ablations", variants: [
            .init(name: "baseline", report: SampleReport.make()), .init(name: "method-B", report: methodB),
        ])
        let rows = markdown.split(separator: "\n").filter { $0.hasPrefix("| baseline") || $0.hasPrefix("| method-B") }
        #expect(rows.count == 2)
        #expect(markdown.contains("| variant | method | score_random loss | random loss |"))
        #expect(markdown.contains("Shared: "))
        #expect(markdown.contains("score_fn = improvement"))
        #expect(rows[1].contains("| B |"))
        // SampleReport's score_random is ~0.06 below random: a negative Δ.
        #expect(rows[0].contains("| -"))
    }
}
