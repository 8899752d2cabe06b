import Testing
import Selection

@Suite struct RankCorrelationTests {
    @Test func ranksAverageTies() {
        #expect(RankCorrelation.ranks([10, 20, 20, 30]) == [1, 2.5, 2.5, 4])
        #expect(RankCorrelation.ranks([5, 5, 5]) == [2, 2, 2])
        #expect(RankCorrelation.ranks([3, 1, 2]) == [3, 1, 2])
    }

    @Test func spearmanHandComputed() {
        // b ranks [1, 2, 3.5, 5, 3.5]: Σ(a−3)(b−3) = 8, Σ(a−3)² = 10, Σ(b−3)² = 9.5 → 8/√95.
        #expect(abs(RankCorrelation.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) - 8 / 95.0.squareRoot()) < 1e-12)
        // No ties: ρ = 1 − 6Σd²/(n(n²−1)); ranks a = [1,2,3,4,5], b = [2,1,4,3,5], Σd² = 4 → 1 − 24/120 = 0.8.
        #expect(abs(RankCorrelation.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) - 0.8) < 1e-12)
        #expect(abs(RankCorrelation.spearman([1, 2, 3], [3, 2, 1]) + 1) < 1e-12)
        // Ties: a ranks [1, 2.5, 2.5, 4], b ranks [1, 2, 3, 4]; Pearson of ranks = 4.5 / sqrt(4.5 * 5) = 0.9486832980505138.
        #expect(abs(RankCorrelation.spearman([1, 2, 2, 3], [10, 20, 30, 40]) - 0.9486832980505138) < 1e-12)
        #expect(RankCorrelation.spearman([1, 1, 1], [1, 2, 3]).isNaN)
        #expect(RankCorrelation.spearman([1, 2], [1]).isNaN)
    }

    @Test func partialSpearmanRemovesWhatBothShareWithTheThird() {
        // a and b agree only through c: with c partialled out nothing is left.
        let c: [Double] = [1, 2, 3, 4, 5, 6, 7, 8]
        let a = c, b = c
        #expect(RankCorrelation.spearman(a, b) == 1)
        #expect(RankCorrelation.partialSpearman(a, b, given: c).isNaN)  // a is c: nothing left to correlate
        // Hand-computed (no ties: ρ = 1 − 6Σd²/60): a = [1,3,2,4], b = [2,1,4,3], c = [1,2,3,4] give ρab = 0,
        // ρac = 0.8, ρbc = 0.6 → (0 − 0.48) / √((1 − 0.64)(1 − 0.36)) = −1: what a and b share with c
        // is all their agreement, and beyond it they disagree.
        let partial = RankCorrelation.partialSpearman([1, 3, 2, 4], [2, 1, 4, 3], given: [1, 2, 3, 4])
        #expect(abs(partial + 1) < 1e-12)
    }
}
