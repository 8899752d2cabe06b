import Foundation
import Testing
@testable import Surrogate

/// The training attention computes only the query blocks' visible keys; against the plain math of
/// causal attention (every score, every row) at a length that spans several blocks and ends mid-block.
@Suite("Blocked causal attention")
struct AttentionTests {
    @Test func blockedForwardAndBackwardEqualThePlainMath() {
        let T = 2 * attentionBlock + 13, C = 12, NH = 3, hs = C / NH
        let qkv = (0..<(T * 3 * C)).map { Float(sin(Double($0) * 0.37)) }
        let dout = (0..<(T * C)).map { Float(cos(Double($0) * 0.11)) }
        var out = [Float](repeating: .nan, count: T * C)
        var att = [Float](repeating: .nan, count: NH * T * T)
        var dqkv = [Float](repeating: .nan, count: T * 3 * C)
        var datt = [Float](repeating: .nan, count: T * T)
        attentionForward(&out, &att, qkv, T, C, NH)
        attentionBackward(&dqkv, &datt, dout, qkv, att, T, C, NH)

        // Plain math in Double: p = softmax_{j ≤ t}(q_t·k_j/√hs), y_t = Σ p_j v_j, and its gradients.
        var y = [Double](repeating: 0, count: T * C), dq = [Double](repeating: 0, count: T * 3 * C)
        let scale = 1 / Double(hs).squareRoot()
        func at(_ t: Int, _ part: Int, _ h: Int, _ i: Int) -> Double { Double(qkv[t * 3 * C + part * C + h * hs + i]) }
        for h in 0..<NH {
            for t in 0..<T {
                var s = (0...t).map { j in (0..<hs).reduce(0.0) { $0 + at(t, 0, h, $1) * at(j, 1, h, $1) } * scale }
                let m = s.max()!
                s = s.map { exp($0 - m) }
                let sum = s.reduce(0, +)
                let p = s.map { $0 / sum }
                for i in 0..<hs { y[t * C + h * hs + i] = (0...t).reduce(0.0) { $0 + p[$1] * at($1, 2, h, i) } }
                // dp_j = dy_t · v_j ; ds_j = p_j (dp_j − Σ p dp)
                let dy = (0..<hs).map { Double(dout[t * C + h * hs + $0]) }
                let dp = (0...t).map { j in (0..<hs).reduce(0.0) { $0 + dy[$1] * at(j, 2, h, $1) } }
                let dot = zip(p, dp).reduce(0.0) { $0 + $1.0 * $1.1 }
                for j in 0...t {
                    let ds = p[j] * (dp[j] - dot) * scale
                    for i in 0..<hs {
                        dq[t * 3 * C + h * hs + i] += ds * at(j, 1, h, i)
                        dq[j * 3 * C + C + h * hs + i] += ds * at(t, 0, h, i)
                        dq[j * 3 * C + 2 * C + h * hs + i] += p[j] * dy[i]
                    }
                }
            }
        }
        // Counted with `!(error < bound)` so that a NaN (a scratch entry read before it was written) fails.
        let badOut = zip(out, y).filter { !(abs(Double($0) - $1) < 1e-5) }.count
        let badGrad = zip(dqkv, dq).filter { !(abs(Double($0) - $1) < 1e-4) }.count
        #expect(badOut == 0, "\(badOut) of \(out.count) outputs differ")
        #expect(badGrad == 0, "\(badGrad) of \(dqkv.count) gradients differ")
    }
}
