import Foundation
import Testing
@testable import Surrogate

@Suite("Vectorised exp and tanh")
struct FastMathTests {
    @Test func expMatchesLibm() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let ours = fastExp(x), reference = expf(x)
            worst = max(worst, abs(ours - reference) / reference)
            x += 0.0137
        }
        #expect(worst < 5e-7, "max relative error \(worst)")
        #expect(fastExp(-1000) >= 0)
        #expect(fastExp(1000).isFinite)
    }

    @Test func tanhMatchesLibm() {
        var worst: Float = 0
        var x: Float = -20
        while x < 20 {
            worst = max(worst, abs(fastTanh(x) - tanhf(x)))
            x += 0.0031
        }
        #expect(worst < 1e-6, "max abs error \(worst)")
    }
}
