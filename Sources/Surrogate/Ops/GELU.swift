// llm.c: gelu_forward / gelu_backward (tanh approximation, as GPT-2), in loops LLVM vectorises.

private let geluScale: Float = (2 / Float.pi).squareRoot()

/// out = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³))).  inp, out are (count).
func geluForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ count: Int) {
    for i in 0..<count {
        let x = inp[i]
        let t = fastTanh(geluScale * (x + 0.044715 * x * x * x))
        out[i] = 0.5 * x * (1 + t)
    }
}

/// dinp += dout · gelu'(inp), with sech² = 1 − tanh².
func geluBackward(_ dinp: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ dout: UnsafePointer<Float>, _ count: Int) {
    for i in 0..<count {
        let x = inp[i]
        let x2 = x * x
        let t = fastTanh(geluScale * (x + 0.044715 * x2 * x))
        let local = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * geluScale * (1 + 0.134145 * x2)
        dinp[i] += local * dout[i]
    }
}
