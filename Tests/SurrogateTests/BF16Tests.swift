import CKernels
import Foundation
import Testing
@testable import Surrogate

/// The bf16 paths: rounding, the packed layouts (the portable reference, on every CPU), the AVX-512
/// BF16 kernel against that reference, and the scoring pass and opt-in training in bf16 against fp32
/// (on CPUs that have it: `tovd bench score` says "not available" elsewhere, and the daemon stays on fp32).
@Suite("bf16 paths")
struct BF16Tests {
    static let available = ScoringPrecision.isAvailable(.bf16)

    @Test func roundsToNearestEven() {
        #expect(tov_bf16_from_float(1) == 0x3F80)
        #expect(tov_bf16_from_float(-2) == 0xC000)
        #expect(tov_bf16_from_float(1 + 0x1p-8) == 0x3F80)          // halfway: stays on the even 1.0
        #expect(tov_bf16_from_float(1 + 3 * 0x1p-8) == 0x3F82)      // halfway: up to the even neighbour
        #expect(tov_bf16_from_float(1 + 0x1p-8 + 0x1p-20) == 0x3F81) // past halfway: up
        #expect(tov_bf16_from_float(.infinity) == 0x7F80)
        #expect(tov_bf16_from_float(.greatestFiniteMagnitude) == 0x7F80)   // overflows to infinity
        #expect(tov_bf16_to_float(tov_bf16_from_float(.nan)).isNaN)
        for value: Float in [0.1, -3.75, 1e-30, 65504, 0.3333] {
            let back = tov_bf16_to_float(tov_bf16_from_float(value))
            #expect(abs(back - value) <= abs(value) * 0x1p-8, "\(value) → \(back)")
        }
    }

    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var g = Gaussian(seed: seed)
        return (0..<count).map { _ in g.next() }
    }

    static func packed(_ weight: [Float], OC: Int, C: Int) -> [UInt16] {
        var packed = [UInt16](repeating: 0xFFFF, count: tov_bf16_packed_count(Int32(OC), Int32(C)))
        packed.withUnsafeMutableBufferPointer { tov_bf16_pack($0.baseAddress!, weight, Int32(OC), Int32(C)) }
        return packed
    }

    // Odd C (a padded channel pair), OC off the 64-column panel, N off the 6-row micro-kernel.
    static let shapes: [(N: Int, C: Int, OC: Int)] = [(1, 2, 1), (7, 33, 70), (13, 128, 384), (6, 131, 64), (97, 64, 129)]

    @Test func packedReferenceIsTheProductOfRoundedOperands() {
        for (N, C, OC) in Self.shapes {
            let inp = Self.random(N * C, seed: 1), weight = Self.random(OC * C, seed: 2)
            let packed = Self.packed(weight, OC: OC, C: C)
            var out = [Float](repeating: .nan, count: N * OC)
            tov_bf16_gemm_reference(&out, inp, Int32(N), Int32(C), packed, Int32(OC), 0)
            func rounded(_ x: Float) -> Double { Double(tov_bf16_to_float(tov_bf16_from_float(x))) }
            var worst = 0.0
            for n in 0..<N {
                for o in 0..<OC {
                    var sum = 0.0
                    for c in 0..<C { sum += rounded(inp[n * C + c]) * rounded(weight[o * C + c]) }
                    worst = max(worst, abs(Double(out[n * OC + o]) - sum))
                }
            }
            #expect(worst < 1e-4, "\(N)×\(C)×\(OC): max |Δ| \(worst)")
        }
    }

    @Test(.enabled(if: BF16Tests.available, "needs AVX-512 BF16"))
    func kernelMatchesTheReference() {
        for (N, C, OC) in Self.shapes {
            for accumulate in [false, true] {
                let inp = Self.random(N * C, seed: 3), weight = Self.random(OC * C, seed: 4)
                let packed = Self.packed(weight, OC: OC, C: C)
                let start = Self.random(N * OC, seed: 5)
                var expected = start, actual = start
                tov_bf16_gemm_reference(&expected, inp, Int32(N), Int32(C), packed, Int32(OC), accumulate ? 1 : 0)
                var scratch = [UInt16](repeating: 0, count: tov_bf16_scratch_count(Int32(C)))
                tov_bf16_gemm_avx512(&actual, inp, Int32(N), Int32(C), packed, Int32(OC), accumulate ? 1 : 0, &scratch)
                let worst = zip(expected, actual).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
                #expect(worst < 1e-4, "\(N)×\(C)×\(OC) accumulate \(accumulate): max |Δ| \(worst)")
            }
        }
    }

    /// The input-gradient GEMM's weight operand: Aᵀ packed straight from A must be the packing of an
    /// explicitly transposed copy, padding included.
    @Test func transposedPackingIsThePackingOfTheTranspose() {
        for (_, C, OC) in Self.shapes {
            let a = Self.random(C * OC, seed: 6)   // A (C, OC): B = Aᵀ is (OC, C)
            var transposed = [Float](repeating: 0, count: OC * C)
            for k in 0..<C { for o in 0..<OC { transposed[o * C + k] = a[k * OC + o] } }
            var direct = [UInt16](repeating: 0xFFFF, count: tov_bf16_packed_count(Int32(OC), Int32(C)))
            direct.withUnsafeMutableBufferPointer { tov_bf16_pack_transposed($0.baseAddress!, a, Int32(OC), Int32(C)) }
            #expect(direct == Self.packed(transposed, OC: OC, C: C), "\(OC)×\(C)")
        }
    }

    /// A 64-wide model with 4× the initial weights, so activations are large enough for bf16's rounding
    /// to show, and a batch for it.
    static func scaledModel(layers: Int, seed: UInt64, examples: Int, batchSeed: UInt64) -> (Model, [Example]) {
        let config = ModelConfig(layers: layers, width: 64, heads: 4, context: 80, vocabSize: 300)
        let model = Model(config: config, seed: seed)
        model.params = model.params.map { $0 * 4 }
        return (model, ScoringPassTests.examples(config, count: examples, seed: batchSeed))
    }

    /// bf16 training (forward and input-gradient GEMMs in bf16, weight gradients in fp32): the loss and
    /// every tensor's gradient near fp32's on one batch, with the last layer's tail trimming and two
    /// streams; and a few steps train the model as fp32 steps do. Fails when a GEMM reads the wrong
    /// packed weight (a transposed one in the forward, another layer's) or bf16 silently runs fp32.
    @Test(.enabled(if: BF16Tests.available, "needs AVX-512 BF16"))
    func trainingInBF16StaysCloseToFP32() throws {
        let (model, batch) = Self.scaledModel(layers: 3, seed: 9, examples: 40, batchSeed: 12)
        let fp32Loss = model.forwardBackward(batch, streams: 2)
        let fp32 = model.grads
        let bf16Loss = model.forwardBackward(batch, streams: 2, precision: .bf16)
        let bf16 = model.grads
        #expect(fp32Loss != bf16Loss, "bf16 ran in fp32")
        #expect(abs(fp32Loss - bf16Loss) < 0.01 * fp32Loss, "loss \(fp32Loss) vs \(bf16Loss)")
        for tensor in model.layout.tensors {
            let range = tensor.offset..<(tensor.offset + tensor.count)
            var dot = 0.0, a2 = 0.0, b2 = 0.0
            for i in range { dot += Double(fp32[i] * bf16[i]); a2 += Double(fp32[i] * fp32[i]); b2 += Double(bf16[i] * bf16[i]) }
            let cosine = dot / max((a2 * b2).squareRoot(), 1e-30)
            #expect(cosine > 0.99, "\(tensor.name): cosine with the fp32 gradient \(cosine)")
            #expect(abs(b2.squareRoot() / max(a2.squareRoot(), 1e-30) - 1) < 0.02, "\(tensor.name): norm ratio \((b2 / a2).squareRoot())")
        }

        var options = TrainingOptions()
        options.learningRate = 1e-3
        options.epochs = 3
        options.streams = 2
        let trained = [TrainingPrecision.fp32, .bf16].map { precision -> [Float] in
            let copy = model.copy()
            options.precision = precision
            copy.train(on: batch, options: options, progress: nil)
            return copy.losses(batch, options: .init(streams: 1)).map(\.meanNLL)
        }
        let before = model.losses(batch, options: .init(streams: 1)).map(\.meanNLL).reduce(0, +)
        let after = trained.map { $0.reduce(0, +) }
        #expect(after[0] < before && after[1] < before, "training lowered the loss: before \(before), fp32 \(after[0]), bf16 \(after[1])")
        #expect(abs(after[1] - after[0]) < 0.01 * after[0], "after 3 epochs: fp32 \(after[0]), bf16 \(after[1])")
    }

    @Test(.enabled(if: BF16Tests.available, "needs AVX-512 BF16"))
    func scoringInBF16StaysCloseToFP32() throws {
        let (model, batch) = Self.scaledModel(layers: 2, seed: 5, examples: 60, batchSeed: 11)
        let fp32 = model.losses(batch, options: .init(streams: 2))
        let bf16 = model.losses(batch, options: .init(streams: 2, precision: .bf16))
        let worst = zip(fp32, bf16).reduce(Float(0)) { max($0, abs($1.0.meanNLL - $1.1.meanNLL) / max(1, $1.0.meanNLL)) }
        #expect(worst > 0, "bf16 ran in fp32")
        #expect(worst < 0.02, "max relative |Δ loss| \(worst)")

        // A change of the weights must reach bf16 scoring (the packed copy is dropped, not reused).
        model.params = model.params.map { $0 * 0.5 }
        let fp32After = model.losses(batch, options: .init(streams: 2))
        let bf16After = model.losses(batch, options: .init(streams: 2, precision: .bf16))
        let worstAfter = zip(fp32After, bf16After).reduce(Float(0)) { max($0, abs($1.0.meanNLL - $1.1.meanNLL) / max(1, $1.0.meanNLL)) }
        #expect(worstAfter < 0.02, "bf16 after a weight change: max relative |Δ loss| \(worstAfter)")
    }
}
