// Vectorised exp and tanh. libm's expf/tanhf are scalar calls; in softmax over the vocabulary, the
// attention softmax and GELU they dominated the forward pass. exp uses the classic range reduction
// x = n·ln2 + r, |r| ≤ ln2/2, a degree-6 polynomial for e^r and 2^n from the exponent bits
// (≈ 1 ulp over the clamped range, see FastMathTests).

typealias F8 = SIMD8<Float>

@inline(__always)
func exp8(_ x: F8) -> F8 {
    let clamped = x.clamped(lowerBound: F8(repeating: -87.3), upperBound: F8(repeating: 88.3))
    let n = (clamped * 1.442_695_04).rounded(.toNearestOrEven)
    // r = x − n·ln2, with ln2 split in two so the product is exact enough
    var r = clamped - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p = F8(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 0.166_666_66
    p = p * r + 0.5
    p = p * r * r + r + 1
    let bits = (SIMD8<Int32>(n, rounding: .towardZero) &+ 127) &<< 23
    return p * unsafeBitCast(bits, to: F8.self)
}

@inline(__always)
func expScalar(_ x: Float) -> Float { exp8(F8(repeating: x))[0] }

/// tanh(x) = 1 − 2 / (e^{2x} + 1)
@inline(__always)
func tanh8(_ x: F8) -> F8 {
    1 - 2 / (exp8(x + x) + 1)
}

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}

@inline(__always)
func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self)
}

/// Softmax of `count` values in place; returns nothing (the row sums to 1).
func softmaxInPlace(_ row: UnsafeMutablePointer<Float>, _ count: Int) {
    var maxValue = -Float.greatestFiniteMagnitude
    for i in 0..<count where row[i] > maxValue { maxValue = row[i] }
    let m = F8(repeating: maxValue)
    var sum8 = F8.zero
    var i = 0
    while i + 8 <= count {
        let e = exp8(load8(row + i) - m)
        store8(e, row + i)
        sum8 += e
        i += 8
    }
    var sum = sum8.sum()
    while i < count {
        let e = expScalar(row[i] - maxValue)
        row[i] = e
        sum += e
        i += 1
    }
    let inv = F8(repeating: 1 / sum)
    i = 0
    while i + 8 <= count {
        store8(load8(row + i) * inv, row + i)
        i += 8
    }
    while i < count {
        row[i] *= inv[0]
        i += 1
    }
}
