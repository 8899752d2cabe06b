import Foundation
import Testing
@testable import Surrogate

/// The scoring pass (last layer only at target rows, blocked causal attention, in-place residuals,
/// streams) must give the losses of the training forward pass, which the gradient checks and the
/// PyTorch golden test hold to the math.
@Suite("Scoring pass equals the full forward")
struct ScoringPassTests {
    static func examples(_ config: ModelConfig, count: Int, seed: UInt64) -> [Example] {
        var g = Gaussian(seed: seed)
        func tokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(g.nextUInt64() % 256) } }
        var out: [Example] = [
            Example(prompt: tokens(3), response: tokens(2)),
            Example(prompt: [], response: tokens(5)),                                          // empty prompt
            Example(prompt: tokens(3 * config.context), response: tokens(7)),                  // prompt cut from the left
            Example(prompt: tokens(4), response: tokens(2 * config.context)),                  // response cut from the right
            Example(prompt: [], response: tokens(config.context + 3), allTokens: true),        // every position a target
        ]
        for _ in 0..<count {
            out.append(Example(prompt: tokens(Int(g.nextUInt64() % UInt64(config.context))), response: tokens(1 + Int(g.nextUInt64() % 20))))
        }
        return out
    }

    static func expectEqual(_ fast: [ExampleLoss], _ reference: [ExampleLoss]) {
        #expect(fast.count == reference.count)
        var worst: Float = 0, worstPsi: Float = 0
        for (a, b) in zip(fast, reference) {
            #expect(a.tokenCount == b.tokenCount)
            // relative: the two sum in different orders, and losses reach tens of nats here
            worst = max(worst, abs(a.meanNLL - b.meanNLL) / max(1, abs(b.meanNLL)))
            worstPsi = max(worstPsi, abs(a.psi - b.psi) / max(1, abs(b.psi)))
            for (x, y) in zip(a.perToken, b.perToken) { worst = max(worst, abs(x - y) / max(1, abs(y))) }
            #expect(a.perToken.count == b.perToken.count)
        }
        #expect(worst < 1e-5, "max relative |Δ loss| \(worst)")
        #expect(worstPsi < 1e-4, "max relative |Δ ψ| \(worstPsi)")
    }

    // Context 80 > two query blocks of 32, so the blocked attention's diagonal and off-diagonal blocks
    // both occur; one layer (only the "last layer" path) and three layers (full layers below it).
    @Test(arguments: [1, 3])
    func lossesEqualTheFullForward(layers: Int) {
        let config = ModelConfig(layers: layers, width: 32, heads: 4, context: 80, vocabSize: 300)
        let model = Model(config: config, seed: 3)
        // Larger weights than the initialisation's, so that attention is far from uniform and a
        // wrong mask or a wrong key range changes the losses.
        model.params = model.params.map { $0 * 4 }
        let batch = Self.examples(config, count: 40, seed: 9)
        let reference = model.referenceLosses(batch, perToken: true)
        for streams in [1, 2, 3] {
            Self.expectEqual(model.losses(batch, perToken: true, options: .init(streams: streams)), reference)
        }
        // A copy shares its arena copy-on-write: concurrent streams must only read it.
        Self.expectEqual(model.copy().losses(batch, perToken: true, options: .init(streams: 2)), reference)
        // Small chunks: several packed batches per stream, buffers reused between them.
        Self.expectEqual(model.losses(batch, perToken: true, maxTokensPerChunk: 200, options: .init(streams: 2)), reference)
    }

    @Test func modelsSharingActivationsScoreAsAlone() {
        let config = ModelConfig(layers: 2, width: 32, heads: 4, context: 80, vocabSize: 300)
        let a = Model(config: config, seed: 1), b = Model(config: config, seed: 2)
        let batch = Self.examples(config, count: 10, seed: 4)
        let alone = b.losses(batch)
        b.shareActivations(with: a)
        _ = a.losses(batch)
        #expect(b.losses(batch) == alone)
    }
}
