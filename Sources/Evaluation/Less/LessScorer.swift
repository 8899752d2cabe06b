import Foundation
import Surrogate

/// The LESS-like baseline (arXiv 2402.04333): each pool row's gradient at θ_bas, projected to a few
/// thousand dimensions, scored by its cosine with the mean projected Z_val gradient.
///
/// Gradients come through Surrogate's public training API: one AdamW step on a single row from a fresh
/// optimizer state, weight decay and clipping off, moves each parameter by −lr · g/(|g| + 1e-8). That
/// is Adam's preconditioned first-step direction, the kind of training-gradient feature LESS uses
/// (its Γ(z) = m̂/(√v̂ + ε)), taken here at a fresh state, so it equals sign(g) wherever g ≠ 0. Z_val rows
/// get the same feature, so both sides of the cosine are alike. The exact SGD gradient would need a
/// public `gradient(of:)` in Surrogate (see docs/evaluation.md).
public struct LessScorer {
    public let projection: GradientProjection

    public init(parameterCount: Int, dimensions: Int, seed: UInt64) {
        projection = GradientProjection(inputSize: parameterCount, dimensions: dimensions, seed: seed)
    }

    /// Projected Adam-direction features of each example at `model`'s weights (the model is not changed).
    public func features(_ examples: [Example], at model: Model, progress: (Int) -> Void = { _ in }) -> [[Float]] {
        let base = model.parameters
        var options = TrainingOptions()
        options.learningRate = 1
        options.weightDecay = 0
        options.clipNorm = 0
        var out: [[Float]] = []
        out.reserveCapacity(examples.count)
        for (k, example) in examples.enumerated() {
            let probe = try! Model(config: model.config, parameters: base)
            probe.shareActivations(with: model)
            probe.train(on: [example], options: options, progress: nil)
            let after = probe.parameters
            var direction = [Float](repeating: 0, count: base.count)
            for i in base.indices { direction[i] = base[i] - after[i] }
            out.append(projection.project(direction))
            if (k + 1) % 64 == 0 { progress(k + 1) }
        }
        progress(examples.count)
        return out
    }

    /// cos(feature, mean Z_val feature) for every pool feature.
    public static func scores(pool: [[Float]], zval: [[Float]]) -> [Double] {
        let target = VectorMath.mean(zval)
        return pool.map { VectorMath.cosine($0, target) }
    }
}
