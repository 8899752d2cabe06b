import ArgumentParser
import Evaluation
import Foundation

extension Tovd {
    struct EvaluateCompare: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "evaluate-compare",
            abstract: "One Markdown table over several `tovd evaluate` output directories (ablations).",
            discussion: """
                Reads report.json from each directory and prints, per directory, the settings that differ \
                between them, the scored policy and random at their best learning rates, the improvement \
                in percent and in random's seed spread, the win rate and the Z_val-only reference.
                  bash scripts/ablations.sh            # runs the variants, then this command
                  tovd evaluate-compare eval/ablations/baseline eval/ablations/method-B
                """)

        @Argument(help: "Output directories of `tovd evaluate` runs.") var directories: [String]
        @Option(help: "Title of the table.") var title = "Comparison of evaluation runs"
        @Option(help: "Policy compared with random.") var policy = "score_random"

        func run() throws {
            var variants: [ComparisonReport.Variant] = []
            for directory in directories {
                let path = URL(fileURLWithPath: directory).appendingPathComponent("report.json").path
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ValidationError("\(path) does not exist: run `tovd evaluate --output \(directory)` first")
                }
                let report = try JSONDecoder().decode(EvaluationReport.self, from: data)
                variants.append(.init(name: URL(fileURLWithPath: directory).lastPathComponent, report: report))
            }
            print(ComparisonReport.markdown(title: title, variants: variants, policy: policy), terminator: "")
        }
    }
}
