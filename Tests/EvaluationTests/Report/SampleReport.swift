import Foundation
import Selection
@testable import Evaluation

/// A report with made-up but plausible numbers: 4 policies × 4 LRs × 3 seeds, references, scores, lengths.
enum SampleReport {
    static func make(seeds: [UInt64] = [1, 2, 3]) -> EvaluationReport {
        var rng = SplitMix64(seed: 42)
        func noise() -> Double { Double(rng.next() % 10_000) / 10_000 - 0.5 }
        let lrs = [3e-4, 1e-4, 3e-5, 1e-5]
        let policies = ["score_random", "score_only", "uncertainty", "random"]
        let offset = ["score_random": -0.06, "score_only": -0.035, "uncertainty": 0.01, "random": 0.0]
        var runs: [EvaluationReport.Run] = []
        for p in policies {
            for (i, lr) in lrs.enumerated() {
                for s in seeds {
                    let curve = [2.42, 2.31, 2.36, 2.47][i]
                    runs.append(.init(policy: p, learningRate: lr, seed: s, testLoss: curve + offset[p]! + 0.02 * noise()))
                }
            }
        }
        var refs: [EvaluationReport.Reference] = [.init(name: "θ0 (no fine-tune)", testLoss: 2.71)]
        for lr in lrs { for s in seeds { refs.append(.init(name: "θ0 → Z_val only", learningRate: lr, seed: s, testLoss: 2.55 + 0.02 * noise())) } }
        let scores = (0..<5000).map { _ in 0.15 * (noise() + noise() + noise()) + 0.01 }
        let edges = stride(from: 0.0, through: 256, by: 16).map { $0 }
        let pool = (0..<5000).map { _ in min(255, abs(40 * (noise() + noise()) * 3)) }
        var lengths = [EvaluationReport.LengthDistribution(name: "pool", lengths: pool, edges: edges)]
        for (k, p) in policies.enumerated() {
            let sel = (0..<800).map { _ in min(255, abs(40 * (noise() + noise()) * 3) + Double(k) * 8) }
            lengths.append(.init(name: p, lengths: sel, edges: edges))
        }
        let enrichment = [("score_random", 180), ("score_only", 260), ("uncertainty", 70), ("random", 52)].map {
            EvaluationReport.Enrichment(policy: $0.0, targetInSelection: $0.1, selection: 1000, targetInPool: 5200, pool: 100_000)
        }
        return EvaluationReport(
            setup: .init(title: "ToV evaluation — target quoref", targetSource: "quoref", poolRows: 100_000,
                         validationRows: 300, testRows: 1200, budgetRows: 1000,
                         settings: ["method": "A", "score_fn": "improvement", "epochs L": "4", "model": "4×256"]),
            runs: runs, references: refs, scoreHistogram: Histogram(values: scores, bins: 40), lengths: lengths,
            enrichment: enrichment, wallTimeSeconds: 5432.1, commandLine: "tovd evaluate --target quoref --seeds 1,2,3",
            createdAt: "2026-11-23T23:59:00Z")
    }
}
