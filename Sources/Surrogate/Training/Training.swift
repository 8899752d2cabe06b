import CKernels
import Foundation

public enum LRSchedule: Sendable {
    /// The same rate every step: trajectories are sequences of single epochs that must compose.
    case constant
    /// Linear warmup over `warmupSteps`, then cosine decay to 10 % of the peak at the last step.
    case warmupCosine
}

public struct TrainingOptions: Sendable {
    public var epochs = 1
    public var learningRate: Float = 3e-4
    /// Examples are grouped into batches of about this many tokens.
    public var batchTokens = 4096
    public var maxSteps: Int? = nil
    public var warmupSteps = 0
    public var schedule: LRSchedule = .constant
    public var weightDecay: Float = 0.1
    public var clipNorm: Float = 1.0
    public var seed: UInt64 = 0
    /// Checked before every step: training returns early once it says true (daemon shutdown).
    public var shouldStop: (@Sendable () -> Bool)? = nil
    /// Steps an earlier, interrupted run with these options and examples already took: their batches
    /// are skipped and the schedule goes on from there. Resuming also needs that run's parameters and
    /// ``Model/optimizerState`` restored (``Model/restore(parameters:optimizer:)``).
    public var startStep = 0
    /// Slices of each batch trained concurrently, each with single-threaded BLAS, their gradients
    /// summed (Model.forwardBackward): by default as many as OpenBLAS threads, as the scoring streams.
    public var streams = BLASThreads.configured
    /// The linear layers' arithmetic (fp32 unless asked; ``TrainingPrecision``).
    public var precision: TrainingPrecision = .fp32
    public init() {}
}

/// AdamW's moments and step count: with the parameters, all a training run carries from one step to
/// the next, so a run saved with both resumes bit for bit.
public struct OptimizerState: Sendable, Equatable {
    public var m: [Float]
    public var v: [Float]
    public var step: Int

    public init(m: [Float], v: [Float], step: Int) {
        self.m = m
        self.v = v
        self.step = step
    }

    /// AdamW's constants (llm.c's, with β2 0.95 as in GPT-3's recipe).
    static let beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8

    /// The direction one more AdamW step from this state would move the weights for `gradient`, without
    /// weight decay or clipping: m̂/(√v̂ + ε) with the moments updated by `gradient`. LESS's feature of a
    /// training example (its Γ, arXiv 2402.04333 §3.1). From an empty state it is sign(g) where g ≠ 0.
    public func adamDirection(for gradient: [Float]) -> [Float] {
        precondition(m.isEmpty || m.count == gradient.count, "optimizer state of \(m.count) parameters, gradient of \(gradient.count)")
        let beta1 = Self.beta1, beta2 = Self.beta2
        let t = Float(step + 1)
        let correction1 = 1 - powf(beta1, t), correction2 = 1 - powf(beta2, t)
        var out = [Float](repeating: 0, count: gradient.count)
        for i in gradient.indices {
            let g = gradient[i]
            let mi = beta1 * (m.isEmpty ? 0 : m[i]) + (1 - beta1) * g
            let vi = beta2 * (v.isEmpty ? 0 : v[i]) + (1 - beta2) * g * g
            out[i] = (mi / correction1) / ((vi / correction2).squareRoot() + Self.epsilon)
        }
        return out
    }
}

public struct TrainingProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var loss: Float
    public var tokensPerSecond: Double
}

extension Model {
    /// Trains with AdamW (β1 0.9, β2 0.95, ε 1e-8, decoupled weight decay on matrices), global
    /// grad-norm clipping and the chosen LR schedule. Examples are shuffled with `options.seed` each
    /// epoch, so the same seed and data give bit-identical weights on one machine. The optimizer
    /// state persists across calls: a trajectory trained epoch by epoch equals one long run.
    public func train(on examples: [Example], options: TrainingOptions, progress: ((TrainingProgress) -> Void)?) {
        guard !examples.isEmpty else { return }
        let epochBatches = trainingBatches(examples, options: options)
        var totalSteps = epochBatches.reduce(0) { $0 + $1.count }
        if let maxSteps = options.maxSteps { totalSteps = min(totalSteps, maxSteps) }

        var step = 0
        let started = Date()
        var tokensSeen = 0
        outer: for batches in epochBatches {
            for batch in batches {
                if step < options.startStep { step += 1; continue }
                if step >= totalSteps || options.shouldStop?() == true { break outer }
                let loss = self.step(on: batch, learningRate: learningRate(step: step, total: totalSteps, options: options), options: options)
                step += 1
                tokensSeen += batch.reduce(0) { $0 + min($1.prompt.count + $1.response.count + 2, config.context) }
                progress?(TrainingProgress(step: step, totalSteps: totalSteps, loss: loss,
                                           tokensPerSecond: Double(tokensSeen) / max(Date().timeIntervalSince(started), 1e-9)))
            }
        }
    }

    /// One optimizer step of `train`: forward and backward on `batch`, then AdamW at `learningRate` with
    /// `options`' weight decay and clipping. Returns the batch loss (`tovd bench train` times this).
    @discardableResult
    public func step(on batch: [Example], learningRate: Float, options: TrainingOptions) -> Float {
        let loss = forwardBackward(batch, streams: options.streams, precision: options.precision)
        adamWUpdate(learningRate: learningRate, weightDecay: options.weightDecay, clipNorm: options.clipNorm, parts: options.streams)
        return loss
    }

    /// The batches `train` steps through, per epoch: examples shuffled with `options.seed`, grouped into
    /// batches of about `options.batchTokens` tokens; epochs stop being drawn once `maxSteps` is reached.
    /// `tovd bench train` hands the same batches to PyTorch.
    public func trainingBatches(_ examples: [Example], options: TrainingOptions) -> [[[Example]]] {
        var random = Gaussian(seed: options.seed)
        var epochBatches: [[[Example]]] = []
        for _ in 0..<options.epochs {
            var order = Array(examples.indices)
            for i in stride(from: order.count - 1, to: 0, by: -1) {
                order.swapAt(i, Int(random.nextUInt64() % UInt64(i + 1)))
            }
            var batches: [[Example]] = []
            var current: [Example] = []
            var tokens = 0
            for index in order {
                let example = examples[index]
                let length = min(example.prompt.count + example.response.count + 2, config.context)
                if tokens + length > options.batchTokens, !current.isEmpty {
                    batches.append(current)
                    current = []
                    tokens = 0
                }
                current.append(example)
                tokens += length
            }
            if !current.isEmpty { batches.append(current) }
            epochBatches.append(batches)
            if let maxSteps = options.maxSteps, epochBatches.reduce(0, { $0 + $1.count }) >= maxSteps { break }
        }
        return epochBatches
    }

    /// ∇θ ℓ(θ, x) in ``ParameterLayout`` order: the gradient of the example's loss (its mean NLL over
    /// the response tokens and EOT) with respect to every parameter. Weights and optimizer state are
    /// left as they are.
    public func gradient(of example: Example) -> [Float] {
        _ = forwardBackward([example])
        return grads
    }

    /// The optimizer state after the last step (empty moments before the first).
    public var optimizerState: OptimizerState { OptimizerState(m: adamM, v: adamV, step: adamStep) }

    /// Puts back the weights and optimizer state of a saved run, so training goes on as if it had
    /// never stopped.
    public func restore(parameters: [Float], optimizer: OptimizerState) throws {
        guard parameters.count == layout.count,
              optimizer.m.count == optimizer.v.count, optimizer.m.isEmpty || optimizer.m.count == layout.count,
              optimizer.step >= 0 else {
            throw SurrogateError(.checkpoint, "the saved training state holds \(parameters.count) parameters and \(optimizer.m.count)/\(optimizer.v.count) moments but a \(config.layers)×\(config.width) model needs \(layout.count): it belongs to another model")
        }
        params = parameters
        adamM = optimizer.m
        adamV = optimizer.v
        adamStep = optimizer.step
    }

    func learningRate(step: Int, total: Int, options: TrainingOptions) -> Float {
        switch options.schedule {
        case .constant:
            return options.learningRate
        case .warmupCosine:
            if step < options.warmupSteps { return options.learningRate * Float(step + 1) / Float(options.warmupSteps) }
            let progress = Float(step - options.warmupSteps) / Float(max(total - options.warmupSteps, 1))
            let minimum = 0.1 * options.learningRate
            return minimum + 0.5 * (options.learningRate - minimum) * (1 + cosf(.pi * min(progress, 1)))
        }
    }

    /// One AdamW step over the whole arena, after clipping the global gradient norm. llm.c: gpt2_update.
    /// The arena is cut into `parts` ranges updated concurrently (``ArenaChunks``): the same bits as
    /// one pass, without leaving a core idle for ~3 % of every step as one pass did.
    func adamWUpdate(learningRate: Float, weightDecay: Float, clipNorm: Float, parts: Int = 1) {
        let beta1 = OptimizerState.beta1, beta2 = OptimizerState.beta2, eps = OptimizerState.epsilon
        if adamM.count != layout.count {
            adamM = [Float](repeating: 0, count: layout.count)
            adamV = [Float](repeating: 0, count: layout.count)
        }
        adamStep += 1
        let chunks = ArenaChunks(count: layout.count, parts: parts)
        var blockSums = [Float](repeating: 0, count: ArenaChunks.blocks(layout.count))
        grads.withUnsafeBufferPointer { g in
        blockSums.withUnsafeMutableBufferPointer { b in
            // Unchecked on purpose: each chunk reads its own range and writes its own blocks.
            nonisolated(unsafe) let g = g.baseAddress!, b = b.baseAddress!
            chunks.run { range in tov_block_sum_squares(g + range.lowerBound, range.count, b + range.lowerBound / ArenaChunks.block) }
        }}
        let normSquared = blockSums.reduce(0.0) { $0 + Double($1) }
        let norm = Float(normSquared.squareRoot())
        let clip = clipNorm > 0 && norm > clipNorm ? clipNorm / norm : 1
        let correction1 = 1 - powf(beta1, Float(adamStep))
        let correction2 = 1 - powf(beta2, Float(adamStep))
        let tensors = layout.tensors
        params.withUnsafeMutableBufferPointer { p in
        grads.withUnsafeBufferPointer { g in
        adamM.withUnsafeMutableBufferPointer { m in
        adamV.withUnsafeMutableBufferPointer { v in
            // Unchecked on purpose: each chunk updates only its own range of the four arenas.
            nonisolated(unsafe) let p = p.baseAddress!, g = g.baseAddress!, m = m.baseAddress!, v = v.baseAddress!
            chunks.run { range in
                for tensor in tensors {
                    let lower = max(tensor.offset, range.lowerBound), upper = min(tensor.offset + tensor.count, range.upperBound)
                    guard lower < upper else { continue }
                    tov_adamw(p + lower, g + lower, m + lower, v + lower, upper - lower,
                              learningRate, beta1, beta2, eps, tensor.decays ? weightDecay : 0, clip, correction1, correction2)
                }
            }
        }}}}
    }
}
