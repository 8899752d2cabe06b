import Foundation
import Selection
import Testing
@testable import Evaluation

@Suite struct DSIRTests {
    /// NLTK's WordPunctTokenizer splits `\w+|[^\w\s]+`; DSIR lower-cases first.
    @Test func tokensFollowWordPunct() {
        #expect(NgramImportance.tokens("Hello, World!! It's 3.5 km.").map(String.init) == ["hello", ",", "world", "!!", "it", "'", "s", "3", ".", "5", "km", "."])
        #expect(NgramImportance.tokens("  ").isEmpty)
    }

    @Test func featuresAreUnigramsAndBigrams() {
        let f = NgramImportance.features("a b c", buckets: 10_000)
        #expect(f.count == 3 + 2)
        #expect(f[0] == NgramImportance.bucket("a", 10_000) && f[3] == NgramImportance.bucket("a b", 10_000))
        #expect(NgramImportance.features("", buckets: 10).isEmpty)
    }

    /// The log weight is Σ count · (log p_target − log p_pool): rows like the target's weigh more, and a
    /// hand-computed case matches.
    @Test func importanceWeightsFavourTargetLikeRows() {
        let target = (0..<20).map { "the passage says the answer is \($0)" }
        let pool = (0..<20).map { "plants need water and light \($0)" } + target.prefix(5)
        let dsir = DSIR(target: target, pool: pool)
        #expect(dsir.logWeight("the passage says the answer is 7") > dsir.logWeight("plants need water and light 7"))
        // One bucket each: target all "x", pool half "x" half "y" → log(1) − log(0.5) per "x".
        let tiny = DSIR(target: ["x", "x"], pool: ["x", "y"], buckets: 1_000)
        #expect(abs(tiny.logWeight("x") - (log(1 + 1e-8) - log(0.5 + 1e-8))) < 1e-9)
        #expect(abs(tiny.logWeight("x x") - (2 * tiny.logWeight("x") + tiny.importance.logRatio[NgramImportance.bucket("x x", 1_000)])) < 1e-9)
    }

    /// Gumbel-top-k draws without replacement with probability ∝ weight: n distinct rows, reproducible,
    /// and a row 9× heavier than the others is drawn first about 9/(9 + 9) = 1/2 of the time among 10.
    @Test func gumbelTopKResamplesByWeight() {
        let weights = [log(9.0)] + [Double](repeating: 0, count: 9)
        let draw = DSIR.resample(logWeights: weights, n: 4, seed: 1)
        #expect(Set(draw).count == 4 && draw == DSIR.resample(logWeights: weights, n: 4, seed: 1))
        let firsts = (0..<4000).map { DSIR.resample(logWeights: weights, n: 1, seed: UInt64($0))[0] }
        let heavy = Double(firsts.filter { $0 == 0 }.count) / 4000
        #expect(abs(heavy - 0.5) < 0.04, "\(heavy)")
        #expect(DSIR.resample(logWeights: weights, n: 20, seed: 0).count == 10)
    }
}

@Suite struct LengthMatchedRandomTests {
    /// Z_val's lengths spread over 1–100 tokens; the pool is mostly short. The draw follows Z_val's
    /// quantiles, not the pool's.
    @Test func followsZvalsLengthsNotThePools() {
        let zval = (0..<200).map { 1 + ($0 * 37) % 100 }
        let pool = (0..<5000).map { i in i % 5 == 0 ? 1 + (i * 13) % 100 : 1 + i % 12 }
        let chosen = LengthMatchedRandom.select(poolLengths: pool, targetLengths: zval, n: 400, bins: 10, seed: 5)
        #expect(chosen.count == 400 && Set(chosen).count == 400)
        let picked = chosen.map { Double(pool[$0]) }, target = zval.map(Double.init)
        for q in [0.25, 0.5, 0.75] {
            #expect(abs(Stats.quantile(picked, q) - Stats.quantile(target, q)) <= 10, "q \(q)")
        }
        #expect(Stats.quantile(pool.map(Double.init), 0.5) < 10)
        #expect(chosen == LengthMatchedRandom.select(poolLengths: pool, targetLengths: zval, n: 400, bins: 10, seed: 5))
        #expect(chosen != LengthMatchedRandom.select(poolLengths: pool, targetLengths: zval, n: 400, bins: 10, seed: 6))
    }

    /// A length the pool has too few of passes its share to the nearest lengths.
    @Test func shortfallGoesToTheNearestBins() {
        let zval = [Int](repeating: 3, count: 50) + [Int](repeating: 40, count: 50)
        let pool = [Int](repeating: 3, count: 10) + [Int](repeating: 38, count: 200) + [Int](repeating: 100, count: 200)
        let chosen = LengthMatchedRandom.select(poolLengths: pool, targetLengths: zval, n: 100, bins: 10, seed: 1)
        #expect(chosen.count == 100 && Set(chosen).count == 100)
        #expect(chosen.filter { pool[$0] == 3 }.count == 10)
        #expect(chosen.filter { pool[$0] == 100 }.isEmpty, "the 40-token bin's neighbour is 38, not 100")
        #expect(LengthMatchedRandom.select(poolLengths: [1, 2], targetLengths: zval, n: 5, seed: 0).count == 2)
    }
}
