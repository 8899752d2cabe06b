// exp and tanh written so LLVM vectorises the loops that call them. libm's expf/tanhf are opaque
// scalar calls; in the vocabulary softmax, the attention softmax and GELU they dominated the forward
// pass. exp: x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial for e^r, and 2^n built in the
// exponent bits. n is rounded by adding 1.5·2^23 (no float→int conversion, which would trap and stop
// vectorisation). About 1 ulp over the clamped range (FastMathTests).

@inline(__always)
func fastExp(_ x: Float) -> Float {
    let xc = min(max(x, -87.3), 88.3)
    let shifted = xc * 1.442_695_04 + 12_582_912   // 1.5 · 2^23: the sum's low mantissa bits are round(x·log2e)
    let n = shifted - 12_582_912
    var r = xc - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 0.166_666_66
    p = p * r + 0.5
    p = p * r * r + r + 1
    let bits = (shifted.bitPattern &- 0x4B40_0000) &<< 23 &+ 0x3F80_0000
    return p * Float(bitPattern: bits)
}

/// tanh(x) = 1 − 2 / (e^{2x} + 1)
@inline(__always)
func fastTanh(_ x: Float) -> Float {
    1 - 2 / (fastExp(x + x) + 1)
}
