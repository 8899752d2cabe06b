import Foundation
import Testing
@testable import Evaluation

/// The headline and its words follow the intervals, per LR and tuned, under the rule fixed in code.
@Suite struct ProtocolAnalysisTests {
    /// Five seeds, two LRs, the with-Z_val arm and the alone arm; `gain[lr]` is how much lower
    /// Z_val + score_random's loss is than Z_val + random's, with seed noise shared by the pair.
    static func report(gain: [Double: Double], noise: Double = 0.01) -> EvaluationReport {
        var runs: [EvaluationReport.Run] = []
        for seed in 0..<5 {
            let shared = Double(seed % 3) * 0.05, jitter = noise * Double((seed * 7) % 5 - 2)
            for lr in [1e-4, 3e-5] {
                let base = lr == 1e-4 ? 2.0 : 2.3
                func add(_ policy: String, _ arm: String, _ loss: Double) {
                    runs.append(.init(policy: policy, learningRate: lr, seed: UInt64(seed), testLoss: loss, proxy: "2×128", scoringSeed: UInt64(seed), arm: arm))
                }
                add("zval_only", "with_zval", base + 0.2 + shared)
                add("random", "with_zval", base + shared)
                add("score_random", "with_zval", base + shared - gain[lr]! + jitter)
                add("random", "alone", base + 0.5 + shared)
                add("score_random", "alone", base + 0.5 + shared + jitter)
            }
        }
        return EvaluationReport(setup: .init(title: "t"), runs: runs, wallTimeSeconds: 1, commandLine: "test")
    }

    @Test func aClearGainAtEveryLRIsBetter() throws {
        let a = ProtocolAnalysis(Self.report(gain: [1e-4: 0.05, 3e-5: 0.04]))
        let primary = try #require(a.headlines.first { $0.primary && $0.tuned.baseline == "random" })
        #expect(primary.verdict == .better && primary.learningRatesAgree)
        #expect(primary.tuned.interval.lower > 0 && primary.tuned.interval.method == .paired && primary.tuned.interval.n == 5)
        #expect(primary.sentence.contains("Z_val + score_random is better than Z_val + random"))
        #expect(primary.sentence.contains("Every LR of the grid agrees"))
        // Against Z_val alone (0.2 + gain lower) and, secondary, the selection alone vs random alone (no gain).
        #expect(a.headlines.first { $0.primary && $0.tuned.baseline == "zval_only" }?.verdict == .better)
        let secondary = try #require(a.headlines.first { !$0.primary })
        #expect(secondary.verdict == .inconclusive && secondary.sentence.contains("No difference shown"))
        // Every comparison is there per LR and tuned: 3 in the primary arm, 1 alone, × (2 LRs + tuned).
        #expect(a.comparisons.count == 4 * 3)
    }

    /// Better when tuned but worse at one LR of the grid: the rule says "no difference shown".
    @Test func anLRThatPointsTheOtherWayDowngradesTheHeadline() throws {
        let a = ProtocolAnalysis(Self.report(gain: [1e-4: 0.05, 3e-5: -0.05]))
        let primary = try #require(a.headlines.first { $0.primary && $0.tuned.baseline == "random" })
        #expect(primary.tuned.verdict == .better)
        #expect(primary.perLearningRate.contains { $0.verdict == .worse })
        #expect(primary.verdict == .inconclusive && !primary.learningRatesAgree)
        #expect(primary.sentence.contains("do not all agree"))
    }

    @Test func noiseLargerThanTheGainIsNoDifference() throws {
        let a = ProtocolAnalysis(Self.report(gain: [1e-4: 0.005, 3e-5: 0.005], noise: 0.05))
        let primary = try #require(a.headlines.first { $0.primary && $0.tuned.baseline == "random" })
        #expect(primary.verdict == .inconclusive)
        #expect(!primary.sentence.contains("is better"))
    }

    @Test func theReportRendersTheRuleTheHeadlineAndEveryLR() throws {
        var report = Self.report(gain: [1e-4: 0.05, 3e-5: 0.04])
        report.analysis = ProtocolAnalysis(report)
        let decoded = try EvaluationReport.decode(try report.jsonData())
        #expect(decoded == report)
        let md = MarkdownReport.render(decoded)
        #expect(md.contains("## Headline") && md.contains("Headline rule (fixed in ProtocolAnalysis"))
        #expect(md.contains("## Primary: Z_val + selection vs Z_val + random vs Z_val alone") && md.contains("## Secondary"))
        #expect(md.contains("| 2×128 | Z_val + score_random | Z_val + random | 1e-4 |") && md.contains("| 2×128 | Z_val + score_random | Z_val + random | tuned"))
        #expect(!md.lowercased().contains("win rate") && !md.contains("Spearman"))
        // The grid never mixes arms.
        #expect(md.contains("| Z_val + score_random |") && md.contains("| score_random alone |"))
        let html = HTMLReport.render(decoded)
        #expect(html.contains("<h2>Headline</h2>") && !html.contains("**"))
    }
}
