// llm.c: layernorm_forward / layernorm_backward, over packed rows.

/// out = (inp − mean) · rstd · weight + bias per row.  inp, out are (N, C); mean, rstd are (N).
func layerNormForward(_ out: UnsafeMutablePointer<Float>, _ mean: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>,
                      _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ N: Int, _ C: Int) {
    let eps: Float = 1e-5
    for n in 0..<N {
        let x = inp + n * C
        var m: Float = 0
        for i in 0..<C { m += x[i] }
        m /= Float(C)
        var v: Float = 0
        for i in 0..<C { let d = x[i] - m; v += d * d }
        v /= Float(C)
        let s = 1 / (v + eps).squareRoot()
        let o = out + n * C
        for i in 0..<C { o[i] = (x[i] - m) * s * weight[i] + bias[i] }
        mean[n] = m
        rstd[n] = s
    }
}

/// Accumulates gradients of `layerNormForward` into dinp (N, C), dweight (C), dbias (C).
func layerNormBackward(_ dinp: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>, _ dbias: UnsafeMutablePointer<Float>,
                       _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                       _ mean: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>, _ N: Int, _ C: Int) {
    for n in 0..<N {
        let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
        let m = mean[n], s = rstd[n]
        // two reductions: mean of dnorm and mean of dnorm · norm
        var dnormMean: Float = 0, dnormNormMean: Float = 0
        for i in 0..<C {
            let norm = (x[i] - m) * s
            let dnorm = weight[i] * dy[i]
            dnormMean += dnorm
            dnormNormMean += dnorm * norm
        }
        dnormMean /= Float(C)
        dnormNormMean /= Float(C)
        for i in 0..<C {
            let norm = (x[i] - m) * s
            let dnorm = weight[i] * dy[i]
            dbias[i] += dy[i]
            dweight[i] += norm * dy[i]
            dx[i] += (dnorm - dnormMean - norm * dnormNormMean) * s
        }
    }
}
