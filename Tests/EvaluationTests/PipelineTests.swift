import Foundation
import Selection
import Surrogate
import Testing
@testable import Evaluation

/// The whole evaluation pipeline at CI size: a made-up target task and two unrelated sources, a tiny
/// surrogate, two LRs, two seeds. Checks the report's structure and that every number is finite.
@Suite("Evaluation pipeline (CI size)")
struct PipelineTests {
    static func writeData(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let sources: [(String, (Int) -> (String, String))] = [
            ("subtask900_ropes_toy_target", { ("question \($0 % 7): what colour is the sky", "blue sky \($0 % 3)") }),
            ("subtask901_drop_toy_numbers", { ("add \($0) and \($0 + 1)", "\(2 * $0 + 1)") }),
            ("subtask902_qasc_toy_facts", { ("fact \($0 % 11): plants need", "sunlight and water \($0 % 5)") }),
        ]
        for (name, make) in sources {
            var lines = ""
            for i in 0..<150 {
                let (prompt, response) = make(i)
                lines += "{\"prompt\": \"\(prompt)\", \"response\": \"\(response)\"}\n"
            }
            try lines.write(toFile: "\(directory)/\(name).jsonl", atomically: true, encoding: .utf8)
        }
    }

    @Test func ciSizedRunProducesACompleteReport() throws {
        let root = NSTemporaryDirectory() + "tovd-eval-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.writeData(to: root + "/data")
        var options = EvaluationOptions(dataDirectory: root + "/data", target: "subtask900_ropes_toy_target", outputDirectory: root + "/out")
        options.poolRows = 200
        options.zvalRows = 20
        options.testRows = 40
        options.pretrainRows = 60
        options.uSize = 40
        options.learningRates = [1e-3, 1e-4]
        options.seeds = 2
        options.randomDraws = 4
        options.surrogate = ModelConfig(layers: 1, width: 16, heads: 2, context: 32, vocabSize: 300)
        options.pretrainSteps = 10
        options.proxyEpochs = 1
        options.epochs = 2
        let report = try ToVEvaluation(options: options).run(commandLine: "test")
        #expect(Set(report.runs.map(\.policy)) == Set(options.policies.map(\.rawValue)))
        #expect(report.runs.filter { $0.policy == "random" }.count == 4 * 2)     // 4 draws × 2 LRs
        #expect(report.runs.allSatisfy { $0.testLoss.isFinite && $0.testLoss > 0 })
        #expect(report.references.count == 1 + options.learningRates.count)
        #expect(report.references.allSatisfy { $0.testLoss.isFinite })
        #expect(report.enrichment.count == options.policies.count)
        #expect(report.setup.budgetRows == 8)          // 5 % of the 160 scored rows
        let markdown = try String(contentsOfFile: root + "/out/report.md", encoding: .utf8)
        #expect(!markdown.contains("nan") && !markdown.lowercased().contains("inf "))
        #expect(FileManager.default.fileExists(atPath: root + "/out/report.html"))
        // Resuming reads every finished run back instead of training again.
        let again = try ToVEvaluation(options: options).run(commandLine: "test")
        // (runs.jsonl keeps ~15 significant digits: equal up to float formatting)
        #expect(again.runs.count == report.runs.count)
        for (a, b) in zip(again.runs, report.runs) { #expect(abs(a.testLoss - b.testLoss) < 1e-9) }
    }
}
