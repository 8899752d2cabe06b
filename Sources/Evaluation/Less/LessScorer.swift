import Foundation
import Surrogate

/// The gradient-similarity baselines (LESS, arXiv 2402.04333): each pool row's gradient feature at
/// θ_bas, projected to a few thousand dimensions, scored by its mean cosine with the projected Z_val
/// features (``scores(pool:zval:)``). Two features:
///
/// - ``Feature/sign`` (policy `less`, "LESS-like"): the first version, written when Surrogate had no
///   public gradient. One AdamW step on a single row from a fresh optimizer state, weight decay and
///   clipping off, moves each parameter by −lr · g/(|g| + 1e-8): Adam's first-step direction, sign(g)
///   wherever g ≠ 0, for pool and Z_val rows alike.
/// - ``Feature/adam`` (policy `less_adam`): LESS's own. A pool row's gradient preconditioned by θ_bas's
///   AdamW state (Γ = m̂/(√v̂ + ε) after one more step, its §3.1), Z_val rows' plain gradients, from
///   ``Model/gradient(of:)``. LESS averages over several warmup checkpoints; this uses θ_bas^L only.
public struct LessScorer {
    public let projection: GradientProjection

    public init(parameterCount: Int, dimensions: Int, seed: UInt64) {
        projection = GradientProjection(inputSize: parameterCount, dimensions: dimensions, seed: seed)
    }

    public enum Feature: String, Sendable {
        case sign, adam
    }

    /// Projected features of pool rows (`validation` false) or Z_val rows at `model`'s weights and
    /// optimizer state (neither is changed).
    public func features(_ examples: [Example], at model: Model, feature: Feature, validation: Bool,
                         progress: (Int) -> Void = { _ in }) -> [[Float]] {
        switch feature {
        case .sign:
            return signFeatures(examples, at: model, progress: progress)
        case .adam:
            let state = model.optimizerState
            var out: [[Float]] = []
            out.reserveCapacity(examples.count)
            for (k, example) in examples.enumerated() {
                let g = model.gradient(of: example)
                out.append(projection.project(validation ? g : state.adamDirection(for: g)))
                if (k + 1) % 64 == 0 { progress(k + 1) }
            }
            progress(examples.count)
            return out
        }
    }

    /// Adam's fresh-state first-step direction, read through one training step per row.
    func signFeatures(_ examples: [Example], at model: Model, progress: (Int) -> Void) -> [[Float]] {
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

    /// LESS's influence for one target: the mean over Z_val rows of cos(pool feature, Z_val row's feature),
    /// every Z_val feature normalised first (arXiv 2402.04333 §3.2), so no Z_val row with a large gradient
    /// outweighs the others. Computed as (pool feature / |pool feature|) · mean_j(v_j / |v_j|): equal to
    /// the mean of the cosines, in one dot product per pool row. A zero feature scores 0.
    public static func scores(pool: [[Float]], zval: [[Float]]) -> [Double] {
        let unit = zval.compactMap(normalized)
        guard !unit.isEmpty else { return pool.map { _ in 0 } }
        let target = VectorMath.mean(unit)
        return pool.map { feature in
            guard let u = normalized(feature) else { return 0 }
            var dot = 0.0
            for i in u.indices { dot += Double(u[i]) * Double(target[i]) }
            return dot
        }
    }

    static func normalized(_ x: [Float]) -> [Float]? {
        let norm = x.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        guard norm > 0, norm.isFinite else { return nil }
        return x.map { Float(Double($0) / norm) }
    }
}
