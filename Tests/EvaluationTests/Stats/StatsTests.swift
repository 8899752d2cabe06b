import Foundation
import Testing
@testable import Evaluation

@Suite struct StatsTests {
    @Test func meanAndStd() {
        #expect(Stats.mean([1, 2, 3, 4]) == 2.5)
        #expect(abs(Stats.std([2, 4, 4, 4, 5, 5, 7, 9]) - 2.138089935299395) < 1e-12)
        #expect(Stats.std([3]) == 0)
        #expect(Stats.mean([]).isNaN && Stats.std([]).isNaN)
        #expect(Stats.median([3, 1, 2]) == 2 && Stats.median([4, 1, 3, 2]) == 2.5)
    }

    @Test func ranksAverageTies() {
        #expect(Stats.ranks([10, 20, 20, 30]) == [1, 2.5, 2.5, 4])
        #expect(Stats.ranks([5, 5, 5]) == [2, 2, 2])
        #expect(Stats.ranks([3, 1, 2]) == [3, 1, 2])
    }

    @Test func spearmanHandComputed() {
        // b ranks [1, 2, 3.5, 5, 3.5]: Σ(a−3)(b−3) = 8, Σ(a−3)² = 10, Σ(b−3)² = 9.5 → 8/√95.
        #expect(abs(Stats.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) - 8 / 95.0.squareRoot()) < 1e-12)
        // No ties: ρ = 1 − 6Σd²/(n(n²−1)); ranks a = [1,2,3,4,5], b = [2,1,4,3,5], Σd² = 4 → 1 − 24/120 = 0.8.
        #expect(abs(Stats.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) - 0.8) < 1e-12)
        #expect(abs(Stats.spearman([1, 2, 3], [3, 2, 1]) + 1) < 1e-12)
        // Ties: a ranks [1, 2.5, 2.5, 4], b ranks [1, 2, 3, 4]; Pearson of ranks = 4.5 / sqrt(4.5 * 5) = 0.9486832980505138.
        #expect(abs(Stats.spearman([1, 2, 2, 3], [10, 20, 30, 40]) - 0.9486832980505138) < 1e-12)
        #expect(Stats.spearman([1, 1, 1], [1, 2, 3]).isNaN)
        #expect(Stats.spearman([1, 2], [1]).isNaN)
    }

    @Test func histogram() {
        let h = Histogram(values: [0, 0.5, 1, 1.5, 2, .nan, 10], bins: 4, lower: 0, upper: 2)
        #expect(h.edges == [0, 0.5, 1, 1.5, 2])
        #expect(h.counts == [1, 1, 1, 3])
        #expect(Histogram(values: [3, 3], bins: 2).total == 2)
    }
}

@Suite("Quantiles")
struct QuantileTests {
    @Test func interpolatesBetweenOrderStatistics() {
        #expect(Stats.quantile([3, 1, 2, 4], 0) == 1)
        #expect(Stats.quantile([3, 1, 2, 4], 1) == 4)
        #expect(Stats.quantile([3, 1, 2, 4], 0.5) == 2.5)
        #expect(abs(Stats.quantile(Array(stride(from: 1.0, through: 100, by: 1)), 0.99) - 99.01) < 1e-9)
        #expect(Stats.quantile([], 0.5).isNaN)
    }
}
