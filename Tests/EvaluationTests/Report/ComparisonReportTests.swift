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
        // Every row has as many cells as the header, whatever the setting names hold.
        var withPipe = SampleReport.make()
        withPipe.setup.settings["|U|"] = "2048"
        let table = ComparisonReport.markdown(title: "T", variants: [.init(name: "a", report: withPipe), .init(name: "b", report: methodB)])
        let tableLines = table.split(separator: "\n").filter { $0.hasPrefix("|") }
        #expect(Set(tableLines.map { $0.filter { $0 == "|" }.count }).count == 1)
        // SampleReport's score_random is ~0.06 below random: a negative Δ.
        #expect(rows[0].contains("| -"))
    }
}
