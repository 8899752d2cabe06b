// llm.c: gelu_forward / gelu_backward (tanh approximation, as GPT-2).

private let geluScale: Float = (2 / Float.pi).squareRoot()

/// out = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³))).  inp, out are (count).
func geluForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ count: Int) {
    for i in 0..<count {
        let x = inp[i]
        let cube = 0.044715 * x * x * x
        out[i] = 0.5 * x * (1 + tanhf(geluScale * (x + cube)))
    }
}

/// dinp += dout · gelu'(inp).
func geluBackward(_ dinp: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ dout: UnsafePointer<Float>, _ count: Int) {
    for i in 0..<count {
        let x = inp[i]
        let cube = 0.044715 * x * x * x
        let tanhArg = geluScale * (x + cube)
        let tanhOut = tanhf(tanhArg)
        let coshOut = coshf(tanhArg)
        let sech2 = 1 / (coshOut * coshOut)
        let local = 0.5 * (1 + tanhOut) + x * 0.5 * sech2 * geluScale * (1 + 3 * 0.044715 * x * x)
        dinp[i] += local * dout[i]
    }
}

#if canImport(Glibc)
import Glibc
#endif
