import CKernels
import Foundation
import Testing
@testable import Surrogate

/// The opt-in bf16 scoring path: rounding, the packed layout (the portable reference, on every CPU),
/// the AVX-512 BF16 kernel against that reference and the scoring pass in bf16 against fp32 (on CPUs
/// that have it: `tovd bench score` says "not available" elsewhere, and the daemon stays on fp32).
@Suite("bf16 scoring path")
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

    @Test(.enabled(if: BF16Tests.available, "needs AVX-512 BF16"))
    func scoringInBF16StaysCloseToFP32() throws {
        let config = ModelConfig(layers: 2, width: 64, heads: 4, context: 80, vocabSize: 300)
        let model = Model(config: config, seed: 5)
        model.params = model.params.map { $0 * 4 }
        let batch = ScoringPassTests.examples(config, count: 60, seed: 11)
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
