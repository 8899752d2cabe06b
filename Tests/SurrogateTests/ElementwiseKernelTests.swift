import CKernels
import Foundation
import Testing
@testable import Surrogate

/// The C elementwise kernels the scoring pass uses (Sources/CKernels/elementwise.c, cloned per ISA)
/// against double-precision math and the Swift ops training uses. Lengths off every vector width
/// (1, 7, 33, 2049) so each clone's remainder loop runs.
@Suite("Elementwise C kernels")
struct ElementwiseKernelTests {
    static let lengths = [1, 7, 33, 256, 2049]

    static func values(_ count: Int, seed: UInt64, scale: Float) -> [Float] {
        var g = Gaussian(seed: seed)
        return (0..<count).map { _ in scale * g.next() }
    }

    @Test func geluEqualsTheSwiftOp() {
        for count in Self.lengths {
            let x = Self.values(count, seed: 1, scale: 4)
            var expected = [Float](repeating: 0, count: count)
            geluForward(&expected, x, count)
            var actual = x
            tov_gelu_inplace(&actual, count)
            let worst = zip(expected, actual).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
            #expect(worst < 1e-5, "count \(count): max |Δ| \(worst)")
        }
    }

    @Test func softmaxAndNegativeLogSoftmaxEqualDoubleMath() {
        for count in Self.lengths {
            let x = Self.values(count, seed: 2, scale: 6)
            let m = x.map(Double.init).max()!
            let sum = x.reduce(0.0) { $0 + exp(Double($1) - m) }
            var row = x
            tov_softmax_inplace(&row, Int32(count))
            let worst = zip(x, row).reduce(0.0) { max($0, abs(exp(Double($1.0) - m) / sum - Double($1.1))) }
            #expect(worst < 1e-6, "softmax, count \(count): max |Δ| \(worst)")
            for target in [0, count / 2, count - 1] {
                let expected = log(sum) - (Double(x[target]) - m)
                let actual = Double(tov_negative_log_softmax(x, Int32(count), Int32(target)))
                #expect(abs(actual - expected) < 1e-5 * max(1, expected), "nll, count \(count), target \(target): \(actual) vs \(expected)")
            }
        }
    }

    @Test func layerNormEqualsTheSwiftOp() {
        for C in Self.lengths where C > 1 {
            let N = 5
            let x = Self.values(N * C, seed: 3, scale: 3), w = Self.values(C, seed: 4, scale: 1), b = Self.values(C, seed: 5, scale: 1)
            var expected = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
            layerNormForward(&expected, &mean, &rstd, x, w, b, N, C)
            var actual = [Float](repeating: .nan, count: N * C)
            tov_layernorm_forward(&actual, x, w, b, Int32(N), Int32(C))
            let worst = zip(expected, actual).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
            #expect(worst < 1e-5, "C \(C): max |Δ| \(worst)")
        }
    }
}
