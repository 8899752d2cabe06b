import Foundation
import Surrogate
import Testing
@testable import Evaluation

@Suite("Bootstrap θ0 study")
struct BootstrapStudyTests {
    @Test func measuresBothCorporaPerSeedOnRowsTheyNeverSaw() throws {
        let root = try Fixtures.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try PipelineTests.writeData(to: root + "/data")
        let rows = try ToVEvaluation(options: PipelineTests.smallOptions(root: root)).rows()
        var study = BootstrapStudy(model: ModelConfig(layers: 1, width: 16, heads: 2, context: 32, vocabSize: 300), uSize: 40,
                                   recipe: BootstrapPretraining(steps: 6, learningRate: 3e-3, seed: 0))
        study.heldOutRows = 30
        var progressed = Set<String>()
        let results = try study.run(pool: rows.pool, test: rows.test, seeds: [0, 1]) { label, _, _ in progressed.insert(label) }
        #expect(results.map(\.seed) == [0, 0, 1, 1])
        #expect(results.map(\.corpus) == ["rows", "deduplicated", "rows", "deduplicated"])
        #expect(progressed == ["seed 0 rows", "seed 0 deduplicated", "seed 1 rows", "seed 1 deduplicated"])
        for r in results {
            #expect([r.heldOutResponseLoss, r.targetResponseLoss, r.heldOutTextLoss, r.finalTrainingLoss].allSatisfy { $0.isFinite && $0 > 0 })
        }
        // The toy prompts repeat per source, so the de-duplicated corpus is smaller; the raw one has a
        // document per row of U.
        for pair in stride(from: 0, to: results.count, by: 2) {
            #expect(results[pair].documents == 40)
            #expect(results[pair + 1].documentTokens < results[pair].documentTokens)
        }
        // Seeded: the same study measures the same numbers, to rounding (tests that score at the same
        // time switch OpenBLAS's process-wide thread count, which reorders sums; see Theta0ResumeTests).
        let again = try study.run(pool: rows.pool, test: rows.test, seeds: [1])
        let first = results.suffix(2).map(\.heldOutResponseLoss)
        #expect(again.count == 2 && zip(again.map(\.heldOutResponseLoss), first).allSatisfy { abs($0 - $1) < 1e-4 },
                "\(again.map(\.heldOutResponseLoss)) vs \(first)")
        #expect(throws: EvaluationError.self) { try BootstrapStudy(model: .tiny, uSize: rows.pool.count, recipe: study.recipe).run(pool: rows.pool, test: rows.test, seeds: [0]) }
    }
}
