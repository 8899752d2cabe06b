import Foundation
import Selection
import Surrogate
import Testing
@testable import Evaluation

@Suite("LESS-like baseline")
struct GradientProjectionTests {
    @Test func projectionIsSeededAndLinear() {
        let p = GradientProjection(inputSize: 1000, dimensions: 64, seed: 7)
        let q = GradientProjection(inputSize: 1000, dimensions: 64, seed: 7)
        let r = GradientProjection(inputSize: 1000, dimensions: 64, seed: 8)
        var random = SplitMix64(seed: 1)
        let x = (0..<1000).map { _ in Float(Double(random.next() % 2001) / 1000 - 1) }
        let y = (0..<1000).map { _ in Float(Double(random.next() % 2001) / 1000 - 1) }
        #expect(p.project(x) == q.project(x))
        #expect(p.project(x) != r.project(x))
        let sum = p.project(zip(x, y).map { $0 + $1 }), parts = zip(p.project(x), p.project(y)).map { $0 + $1 }
        #expect(zip(sum, parts).allSatisfy { abs($0 - $1) < 1e-4 })
        #expect(p.bytesPerRow == 256)
    }

    /// A count sketch preserves inner products in expectation: averaged over seeds, ⟨Px, Py⟩ ≈ ⟨x, y⟩,
    /// and a vector's cosine with a slightly perturbed copy stays near 1 after projection.
    @Test func projectionPreservesInnerProductsOnAverage() {
        var random = SplitMix64(seed: 3)
        let x = (0..<2000).map { _ in Float(Double(random.next() % 2001) / 1000 - 1) }
        let y = x.map { $0 + Float(Double(random.next() % 2001) / 4000 - 0.25) }
        let exact = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        var mean = 0.0
        for seed in 0..<50 {
            let p = GradientProjection(inputSize: 2000, dimensions: 256, seed: UInt64(seed))
            mean += zip(p.project(x), p.project(y)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } / 50
        }
        #expect(abs(mean - exact) / exact < 0.05, "mean \(mean) vs exact \(exact)")
        let p = GradientProjection(inputSize: 2000, dimensions: 256, seed: 0)
        #expect(VectorMath.cosine(p.project(x), p.project(y)) > 0.9)
    }

    @Test func cosineAndMean() {
        #expect(abs(VectorMath.cosine([1, 0], [2, 0]) - 1) < 1e-12)
        #expect(abs(VectorMath.cosine([1, 0], [0, 3])) < 1e-12)
        #expect(abs(VectorMath.cosine([1, 1], [-1, -1]) + 1) < 1e-12)
        #expect(VectorMath.cosine([0, 0], [1, 2]) == 0)
        #expect(VectorMath.mean([[1, 2], [3, 6]]) == [2, 4])
    }

    /// The features are the Adam first-step direction g/(|g| + ε), the same for the same row, and copies
    /// of Z_val-like rows in the pool score above rows of another task.
    /// A toy task: Z_val asks the sky's colour; the pool holds two such rows (0, 2) and two sums (1, 3).
    static let config = ModelConfig(layers: 1, width: 16, heads: 2, context: 32, vocabSize: 300)
    static let toy: (zval: [Example], pool: [Example]) = {
        let tokenizer = Tokenizer.train(sample: [Array("the sky is blue; add two and three".utf8)], vocabSize: 300)
        func example(_ p: String, _ r: String) -> Example { tokenizer.example(prompt: Array(p.utf8), response: Array(r.utf8)) }
        return ((0..<6).map { example("what colour is the sky \($0)", "blue") },
                [example("what colour is the sky 1", "blue"), example("add 2 and 3", "5 and 7"),
                 example("what colour is the sky 4", "blue"), example("add 8 and 9", "17 or 18")])
    }()

    @Test func featuresRankZvalLikeRowsFirst() throws {
        let (config, (zval, pool)) = (Self.config, Self.toy)
        let model = Model(config: config, seed: 1)
        let scorer = LessScorer(parameterCount: model.parameterCount, dimensions: 128, seed: 5)
        let before = model.parameters
        let features = scorer.features(pool, at: model, feature: .sign, validation: false)
        #expect(model.parameters == before, "scoring must not train θ_bas")
        #expect(features == scorer.features(pool, at: model, feature: .sign, validation: false))
        let scores = LessScorer.scores(pool: features, zval: scorer.features(zval, at: model, feature: .sign, validation: true))
        #expect(min(scores[0], scores[2]) > max(scores[1], scores[3]), "\(scores)")

        // Unprojected, the direction is g/(|g| + ε): within [−1, 1], and ±1 (up to ε) wherever g is not tiny.
        let probe = try Model(config: config, parameters: before)
        var options = TrainingOptions()
        options.learningRate = 1; options.weightDecay = 0; options.clipNorm = 0
        probe.train(on: [pool[0]], options: options, progress: nil)
        let direction = zip(before, probe.parameters).map { $0 - $1 }
        #expect(direction.allSatisfy { abs($0) <= 1.0001 })
        #expect(direction.filter { abs(abs($0) - 1) < 1e-3 }.count > direction.count / 2)
    }

    /// LESS's own feature: pool rows' gradients preconditioned by θ_bas's AdamW state, Z_val rows' plain
    /// gradients. It leaves weights and optimizer state alone, and from an empty optimizer state its pool
    /// feature is the sign feature of `less`.
    @Test func adamFeaturesFollowLESSAndAgreeWithSignFromAFreshState() throws {
        let (config, (zval, pool)) = (Self.config, Self.toy)
        let scorer = LessScorer(parameterCount: Model(config: config, seed: 1).parameterCount, dimensions: 128, seed: 5)

        let fresh = Model(config: config, seed: 1)
        let sign = scorer.features(pool, at: fresh, feature: .sign, validation: false)
        let adamFromEmpty = scorer.features(pool, at: fresh, feature: .adam, validation: false)
        #expect(zip(sign, adamFromEmpty).allSatisfy { a, b in zip(a, b).allSatisfy { abs($0 - $1) < 1e-3 } })

        // θ_bas after a warmup: the optimizer state is what preconditions the pool rows.
        let base = Model(config: config, seed: 1)
        var warmup = TrainingOptions()
        warmup.epochs = 3
        warmup.learningRate = 1e-3
        base.train(on: pool + zval, options: warmup, progress: nil)
        let (weights, state) = (base.parameters, base.optimizerState)
        let features = scorer.features(pool, at: base, feature: .adam, validation: false)
        let targets = scorer.features(zval, at: base, feature: .adam, validation: true)
        #expect(base.parameters == weights && base.optimizerState == state, "scoring must not train θ_bas")
        // LESS's definition: Γ(g) = m̂/(√v̂ + ε) after one more step for pool rows, g for Z_val rows. (No
        // ranking check: after so short a warmup the shared momentum m dominates every pool row's Γ, as
        // it does in LESS's own formula.)
        let probe = Model(config: config, seed: 1)
        try probe.restore(parameters: weights, optimizer: state)
        for (k, row) in pool.enumerated() {
            let g = probe.gradient(of: row)
            #expect(zip(features[k], scorer.projection.project(state.adamDirection(for: g))).allSatisfy { abs($0 - $1) < 1e-4 })
        }
        #expect(zip(targets[0], scorer.projection.project(probe.gradient(of: zval[0]))).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(features[0] != scorer.features([pool[0]], at: base, feature: .adam, validation: true)[0], "pool rows are preconditioned, Z_val rows not")
    }
}

@Suite struct LessScoreTests {
    /// LESS averages the cosine with each Z_val row's feature, each normalised first: a Z_val row with a
    /// 10× larger gradient must not decide the ranking alone (it did with the cosine to the mean).
    @Test func theMeanOfCosinesWeighsEveryZvalRowAlike() {
        let zval: [[Float]] = [[10, 0], [0, 1]]
        let pool: [[Float]] = [[1, 0.2], [0.2, 1]]
        let scores = LessScorer.scores(pool: pool, zval: zval)
        func cos(_ a: [Float], _ b: [Float]) -> Double { VectorMath.cosine(a, b) }
        for (i, p) in pool.enumerated() {
            #expect(abs(scores[i] - (cos(p, zval[0]) + cos(p, zval[1])) / 2) < 1e-6)
        }
        #expect(abs(scores[0] - scores[1]) < 1e-6)
        #expect(LessScorer.scores(pool: [[0, 0]], zval: zval) == [0])
    }
}
