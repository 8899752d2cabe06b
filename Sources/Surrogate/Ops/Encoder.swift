// llm.c: encoder_forward / encoder_backward: token embedding plus position embedding.

/// out[n] = wte[tokens[n]] + wpe[positions[n]].  out is (N, C), wte (V, C), wpe (maxT, C).
func encoderForward(_ out: UnsafeMutablePointer<Float>, _ tokens: UnsafePointer<Int32>, _ positions: UnsafePointer<Int32>,
                    _ wte: UnsafePointer<Float>, _ wpe: UnsafePointer<Float>, _ N: Int, _ C: Int) {
    for n in 0..<N {
        let o = out + n * C, te = wte + Int(tokens[n]) * C, pe = wpe + Int(positions[n]) * C
        for i in 0..<C { o[i] = te[i] + pe[i] }
    }
}

func encoderBackward(_ dwte: UnsafeMutablePointer<Float>, _ dwpe: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>,
                     _ tokens: UnsafePointer<Int32>, _ positions: UnsafePointer<Int32>, _ N: Int, _ C: Int) {
    for n in 0..<N {
        let d = dout + n * C, te = dwte + Int(tokens[n]) * C, pe = dwpe + Int(positions[n]) * C
        for i in 0..<C {
            te[i] += d[i]
            pe[i] += d[i]
        }
    }
}

/// out = a + b (the residual stream).
func residualForward(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) {
    for i in 0..<count { out[i] = a[i] + b[i] }
}

/// da += dout; db += dout.
func residualBackward(_ da: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ count: Int) {
    for i in 0..<count {
        da[i] += dout[i]
        db[i] += dout[i]
    }
}
