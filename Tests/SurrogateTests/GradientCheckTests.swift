import Foundation
import Testing
@testable import Surrogate

/// Every parameter tensor's analytic gradient against central finite differences (llm.c's
/// test_gpt2 checks against PyTorch; here the reference is the loss itself).
@Suite("Gradient check")
struct GradientCheckTests {
    static let config = ModelConfig(layers: 2, width: 8, heads: 2, context: 12, vocabSize: 270)

    static func batch() -> [Example] {
        [
            Example(prompt: [1, 2, 3, 4], response: [5, 6, 7]),
            Example(prompt: [9], response: [10, 11, 12, 13, 14, 260]),
            Example(prompt: [20, 21, 22, 23, 24, 25, 26, 27, 28, 29], response: [30, 31]),   // prompt cut from the left
            Example(prompt: [], response: [40, 41, 42, 43], allTokens: true),
        ]
    }

    @Test func everyTensorMatchesFiniteDifferences() throws {
        let model = Model(config: Self.config, seed: 7)
        // Larger weights than the init so every path carries a gradient well above float32 noise.
        for tensor in model.layout.tensors where !["ln1w", "ln2w", "lnfw"].contains(tensor.name) {
            for i in tensor.offset..<(tensor.offset + tensor.count) { model.params[i] = Float(sin(Double(i) * 1.7)) * 0.3 }
        }
        let batch = Self.batch()
        model.forwardBackward(batch)
        let analytic = model.grads
        let eps: Float = 1e-2
        for tensor in model.layout.tensors {
            // The entries with the largest analytic gradients: where a bug shows most clearly.
            let indices = (tensor.offset..<(tensor.offset + tensor.count)).sorted { abs(analytic[$0]) > abs(analytic[$1]) }.prefix(4)
            var worst: Float = 0
            for i in indices {
                let saved = model.params[i]
                model.params[i] = saved + eps
                let plus = model.forwardBackward(batch)
                model.params[i] = saved - eps
                let minus = model.forwardBackward(batch)
                model.params[i] = saved
                let numeric = (plus - minus) / (2 * eps)
                let error = abs(numeric - analytic[i]) / max(abs(numeric) + abs(analytic[i]), 1e-3)
                worst = max(worst, error)
            }
            print("gradcheck \(tensor.name) \(worst)"); #expect(worst < 0.01, "\(tensor.name): relative error \(worst)")
        }
    }

    /// Training streams cut the batch and sum their gradient arenas: the same loss and gradient as one
    /// stream, up to summation order. Fails when a slice weights its examples by its own size.
    /// The arenas are summed range by range on every core (``ArenaChunks``), so a model of several
    /// norm blocks is checked too, with two and three streams: a range left out fails.
    @Test func twoStreamsGiveTheOneStreamGradient() {
        for config in [Self.config, ModelConfig(layers: 2, width: 32, heads: 4, context: 24, vocabSize: 300)] {
            let model = Model(config: config, seed: 7)
            let batch = Self.batch()
            let oneLoss = model.forwardBackward(batch, streams: 1)
            let one = model.grads
            for streams in [2, 3] {
                let twoLoss = model.forwardBackward(batch, streams: streams)
                let two = model.grads
                #expect(abs(oneLoss - twoLoss) <= 1e-6 * max(1, abs(oneLoss)), "loss \(oneLoss) vs \(twoLoss)")
                let scale = one.map(abs).max()!
                let worst = zip(one, two).map { abs($0 - $1) }.max()!
                #expect(worst <= 1e-5 * scale, "\(config.width) wide, \(streams) streams: max |Δgrad| \(worst), max |grad| \(scale)")
            }
        }
    }

    @Test func blasMatmulMatchesTheNaiveReference() {
        let N = 5, C = 7, OC = 3
        let inp = (0..<(N * C)).map { Float(sin(Double($0))) }
        let weight = (0..<(OC * C)).map { Float(cos(Double($0))) }
        let bias = (0..<OC).map { Float($0) }
        var fast = [Float](repeating: 0, count: N * OC), slow = fast
        matmulForward(&fast, inp, weight, bias, N, C, OC)
        matmulForwardNaive(&slow, inp, weight, bias, N, C, OC)
        for (a, b) in zip(fast, slow) { #expect(abs(a - b) < 1e-4) }
    }
}

@Suite("Model behaviour")
struct ModelTests {
    @Test func batchedLossesEqualOneAtATime() {
        let model = Model(config: .tiny, seed: 1)
        let batch = GradientCheckTests.batch() + [Example(prompt: Array(repeating: 3, count: 40), response: Array(repeating: 4, count: 30))]
        let together = model.losses(batch)
        for (example, loss) in zip(batch, together) {
            let alone = model.losses([example])[0]
            #expect(abs(alone.meanNLL - loss.meanNLL) < 1e-4)
            #expect(alone.tokenCount == loss.tokenCount)
        }
        #expect(together[0].tokenCount == 4)          // 3 response tokens + EOT
        #expect(together.last!.tokenCount == 16)      // response cut to context − 1, plus the next token
    }

    @Test func uniformModelHasLogVocabLossAndPsi() {
        let model = Model(config: .tiny, seed: 1)
        for i in model.params.indices { model.params[i] = 0 }
        let loss = model.losses([Example(prompt: [1], response: [2, 3])], perToken: true)[0]
        let V = Float(ModelConfig.tiny.vocabSize)
        #expect(abs(loss.meanNLL - logf(V)) < 1e-4)
        #expect(abs(loss.psi - logf((1 / V) * (1 - 1 / V))) < 1e-3)
        #expect(loss.perToken.count == 3)
    }

    @Test func trainingLearnsAPatternAndIsReproducible() {
        func run() -> Model {
            let model = Model(config: .tiny, seed: 3)
            let pattern = Example(prompt: [10, 11], response: [12, 13, 14, 15, 16, 17])
            var options = TrainingOptions()
            options.epochs = 60
            options.learningRate = 1e-2
            options.seed = 9
            model.train(on: Array(repeating: pattern, count: 4), options: options, progress: nil)
            return model
        }
        let a = run(), b = run()
        #expect(a.parameters == b.parameters)
        let learned = a.losses([Example(prompt: [10, 11], response: [12, 13, 14, 15, 16, 17])])[0].meanNLL
        let other = a.losses([Example(prompt: [50, 51], response: [60, 70, 80, 90, 100, 110])])[0].meanNLL
        #expect(learned < 0.5)
        #expect(other > 2)
    }

    @Test func aRunRestoredMidwayEndsWhereAnUninterruptedOneDoes() throws {
        let examples: [Example] = (0..<12).map { (i: Int) -> Example in
            let token = Int32(i)
            return Example(prompt: [10, 20 + token], response: [12, 30 + token, 14, 15])
        }
        var options = TrainingOptions()
        options.epochs = 4
        options.batchTokens = 24
        options.learningRate = 1e-2
        options.schedule = .warmupCosine
        options.warmupSteps = 3
        options.seed = 4
        let straight = Model(config: .tiny, seed: 3)
        var straightSteps: [Int] = []
        straight.train(on: examples, options: options) { straightSteps.append($0.step) }

        let first = Model(config: .tiny, seed: 3)
        var steps: [Int] = []
        var stopAfter = options
        let stop = StopAfter(7)
        stopAfter.shouldStop = { stop.tick() }
        first.train(on: examples, options: stopAfter) { steps.append($0.step) }
        #expect(steps.last == 7 && first.optimizerState.step == 7)

        let resumed = Model(config: .tiny, seed: 99)
        try resumed.restore(parameters: first.parameters, optimizer: first.optimizerState)
        var rest = options
        rest.startStep = 7
        var resumedSteps: [Int] = []
        resumed.train(on: examples, options: rest) { resumedSteps.append($0.step) }
        #expect(straightSteps.count > 12)
        #expect(steps + resumedSteps == straightSteps)
        #expect(resumed.parameters == straight.parameters)
        #expect(resumed.optimizerState == straight.optimizerState)

        #expect(throws: SurrogateError.self) {
            try resumed.restore(parameters: first.parameters, optimizer: OptimizerState(m: [1], v: [1], step: 1))
        }
    }

    @Test func thePublicGradientIsTheLossSlopeAndChangesNothing() throws {
        let model = Model(config: .tiny, seed: 8)
        let example = Example(prompt: [10, 11, 12], response: [40, 41, 42, 43])
        let before = model.parameters
        let g = model.gradient(of: example)
        #expect(model.parameters == before && model.optimizerState.m.isEmpty)
        // Central difference along the gradient's own direction: (ℓ(θ + h·ĝ) − ℓ(θ − h·ĝ)) / 2h = |g|.
        let norm = g.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        let h = 1e-2
        func loss(_ step: Double) throws -> Double {
            let moved = try Model(config: .tiny, parameters: zip(before, g).map { $0 + Float(step * Double($1) / norm) })
            return Double(moved.referenceLosses([example])[0].meanNLL)
        }
        let slope = (try loss(h) - loss(-h)) / (2 * h)
        #expect(abs(slope - norm) / norm < 0.02, "slope \(slope) vs |g| \(norm)")
    }

    @Test func adamDirectionIsTheStepAdamWTakes() throws {
        let examples = (0..<6).map { i in Example(prompt: [10, Int32(20 + i)], response: [12, Int32(30 + i)]) }
        let model = Model(config: .tiny, seed: 6)
        var options = TrainingOptions()
        options.epochs = 3
        options.batchTokens = 12
        model.train(on: examples, options: options, progress: nil)
        #expect(model.optimizerState.step > 3)

        let probe = Example(prompt: [10, 11], response: [50, 51, 52])
        let direction = model.optimizerState.adamDirection(for: model.gradient(of: probe))
        // One step at learning rate 1e-2 with weight decay and clipping off moves by −1e-2 · direction.
        let before = model.parameters
        var step = TrainingOptions()
        step.learningRate = 1e-2
        step.weightDecay = 0
        step.clipNorm = 0
        model.train(on: [probe], options: step, progress: nil)
        let moved = zip(before, model.parameters).map { ($0 - $1) / 1e-2 }
        let worst = zip(moved, direction).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 2e-3, "largest difference \(worst)")   // float rounding of p − (p − 1e-2·d) is ~1e-5

        // From an empty state the direction is the gradient's sign.
        let fresh = OptimizerState(m: [], v: [], step: 0).adamDirection(for: [3, -0.5, 0, 1e-3])
        #expect(zip(fresh, [1, -1, 0, 1] as [Float]).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    /// The passes over the whole arena after a step's streams (their gradients summed, the norm,
    /// AdamW) run split across cores (``ArenaChunks``). The split must cover every parameter once and
    /// change no bit: a range skipped, updated twice or given another tensor's weight decay fails here.
    @Test func theOptimizerSplitAcrossCoresChangesNoBit() {
        for count in [1, 4095, 4096, 4097, 40_000] {
            for parts in [1, 2, 3, 8] {
                let ranges = ArenaChunks(count: count, parts: parts).ranges
                #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == count)
                #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound && $1.lowerBound % ArenaChunks.block == 0 })
                #expect(ranges.allSatisfy { !$0.isEmpty } && ranges.count <= parts)
            }
        }
        // ~36,000 parameters: nine norm blocks, with tensor boundaries inside them.
        let config = ModelConfig(layers: 2, width: 32, heads: 4, context: 24, vocabSize: 300)
        let batch = (0..<6).map { i in Example(prompt: [1, Int32(20 + i), 3], response: [Int32(40 + i), 41, 42]) }
        let one = Model(config: config, seed: 2), split = Model(config: config, seed: 2)
        #expect(one.layout.count > 8 * ArenaChunks.block)
        for step in 0..<3 {
            for (model, parts) in [(one, 1), (split, 3)] {
                model.forwardBackward(batch)
                // A clipped step and an unclipped one: the norm decides which.
                model.adamWUpdate(learningRate: 1e-2, weightDecay: 0.1, clipNorm: step == 1 ? 1e-3 : 1, parts: parts)
            }
            // Compared as one Bool: a failing array comparison would print 36,000 numbers.
            let sameWeights = split.parameters == one.parameters, sameState = split.optimizerState == one.optimizerState
            #expect(sameWeights && sameState, "step \(step): first weight that differs at \(String(describing: split.parameters.indices.first { split.parameters[$0] != one.parameters[$0] }))")
        }
        let moved = one.parameters != Model(config: config, seed: 2).parameters
        #expect(moved)
    }

    @Test func parametersRoundTripAndWrongSizesAreRefused() throws {
        let model = Model(config: .tiny, seed: 5)
        let copy = try Model(config: .tiny, parameters: model.parameters)
        #expect(copy.parameters == model.parameters)
        #expect(throws: SurrogateError.self) { try Model(config: .tiny, parameters: [1, 2, 3]) }
    }
}

/// Says stop once it has been asked `count` times (training asks before every step).
final class StopAfter: @unchecked Sendable {
    private var left: Int
    init(_ count: Int) { left = count }
    func tick() -> Bool {
        if left == 0 { return true }
        left -= 1
        return false
    }
}

/// Per-example losses of a seeded model against PyTorch's on the same weights and batch
/// (Fixtures/golden_torch_losses.json, written by Benchmarks/reference/torch_reference.py; see
/// Benchmarks/reference/README.md to regenerate).
@Suite("Golden losses from PyTorch")
struct GoldenTests {
    @Test func lossesMatchPyTorch() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/golden_torch_losses.json")
        let golden = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let expected = (golden["losses"] as! [Double]).map(Float.init)
        let model = Model(config: ModelConfig(layers: 2, width: 32, heads: 4, context: 24, vocabSize: 300), seed: 1)
        let examples = [
            Example(prompt: [1, 2, 3, 4, 5], response: [6, 7, 8]),
            Example(prompt: Array(10..<40), response: [41, 42, 43, 44]),
            Example(prompt: [7], response: Array(100..<140)),
            Example(prompt: [], response: [50, 51, 52, 53, 54, 55]),
        ]
        let ours = model.losses(examples).map(\.meanNLL)
        for (a, b) in zip(ours, expected) { #expect(abs(a - b) <= 1e-4, "ours \(a) torch \(b)") }
        #expect(ours.count == expected.count)
    }
}
