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
