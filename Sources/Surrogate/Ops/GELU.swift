// llm.c: gelu_forward / gelu_backward (tanh approximation, as GPT-2), eight lanes at a time.

private let geluScale: Float = (2 / Float.pi).squareRoot()

/// out = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³))).  inp, out are (count).
func geluForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ count: Int) {
    var i = 0
    while i + 8 <= count {
        let x = load8(inp + i)
        let inner: F8 = x + 0.044715 * x * x * x
        let t: F8 = tanh8(geluScale * inner)
        store8(0.5 * x * (1 + t), out + i)
        i += 8
    }
    while i < count {
        let x = inp[i]
        let t = tanh8(F8(repeating: geluScale * (x + 0.044715 * x * x * x)))[0]
        out[i] = 0.5 * x * (1 + t)
        i += 1
    }
}

/// dinp += dout · gelu'(inp), with sech² = 1 − tanh².
func geluBackward(_ dinp: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ dout: UnsafePointer<Float>, _ count: Int) {
    @inline(__always) func local(_ x: F8) -> F8 {
        let x2: F8 = x * x
        let inner: F8 = x + 0.044715 * x2 * x
        let t: F8 = tanh8(geluScale * inner)
        let sech2: F8 = 1 - t * t
        let dinner: F8 = geluScale * (1 + 0.134145 * x2)
        let half: F8 = 0.5 * (1 + t)
        return half + 0.5 * x * sech2 * dinner
    }
    var i = 0
    while i + 8 <= count {
        store8(load8(dinp + i) + local(load8(inp + i)) * load8(dout + i), dinp + i)
        i += 8
    }
    while i < count {
        dinp[i] += local(F8(repeating: inp[i]))[0] * dout[i]
        i += 1
    }
}
