import CKernels
import COpenBLAS

// Linear layers on packed token rows, through cblas_sgemm (row-major). llm.c: matmul_forward / matmul_backward.

/// out = inp · Wᵀ + bias.  inp is (N, C), weight is (OC, C), bias is (OC), out is (N, OC).
func matmulForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                   _ bias: UnsafePointer<Float>?, _ N: Int, _ C: Int, _ OC: Int) {
    if let bias {
        for n in 0..<N { (out + n * OC).update(from: bias, count: OC) }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(N), Int32(OC), Int32(C),
                1, inp, Int32(C), weight, Int32(C), bias == nil ? 0 : 1, out, Int32(OC))
}

/// out += inp · Wᵀ + bias (a residual update in place: no separate projection buffer and add pass).
func matmulAccumulate(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                      _ bias: UnsafePointer<Float>, _ N: Int, _ C: Int, _ OC: Int) {
    for n in 0..<N {
        let row = out + n * OC
        for o in 0..<OC { row[o] += bias[o] }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(N), Int32(OC), Int32(C),
                1, inp, Int32(C), weight, Int32(C), 1, out, Int32(OC))
}

/// Accumulates the gradients of `out = inp · Wᵀ + bias` into dweight (OC, C), dbias (OC), and into dinp
/// (N, C), or overwrites dinp with `accumulate: false` (no zeroing pass over the buffer first).
/// With `bf16` (Wᵀ packed by ``BF16TrainingWeights``, and the kernel's input scratch for rows of OC)
/// the input gradient takes bf16 operands; the weight gradient is fp32 either way.
func matmulBackward(_ dinp: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>, _ dbias: UnsafeMutablePointer<Float>?,
                    _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                    _ N: Int, _ C: Int, _ OC: Int, accumulate: Bool = true,
                    bf16: (transposed: UnsafePointer<UInt16>, scratch: UnsafeMutablePointer<UInt16>)? = nil) {
    // dinp (+)= dout · W
    if let bf16 {
        tov_bf16_gemm_avx512(dinp, dout, Int32(N), Int32(OC), bf16.transposed, Int32(C), accumulate ? 1 : 0, bf16.scratch)
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(N), Int32(C), Int32(OC),
                    1, dout, Int32(OC), weight, Int32(C), accumulate ? 1 : 0, dinp, Int32(C))
    }
    // dW += doutᵀ · inp
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(OC), Int32(C), Int32(N),
                1, dout, Int32(OC), inp, Int32(C), 1, dweight, Int32(C))
    if let dbias { tov_column_sums_add(dbias, dout, Int32(N), Int32(OC)) }
}

/// The algorithmic reference for `matmulForward`, kept beside the BLAS path and tested against it.
func matmulForwardNaive(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                        _ bias: UnsafePointer<Float>?, _ N: Int, _ C: Int, _ OC: Int) {
    for n in 0..<N {
        for o in 0..<OC {
            var sum = bias?[o] ?? 0
            for c in 0..<C { sum += inp[n * C + c] * weight[o * C + c] }
            out[n * OC + o] = sum
        }
    }
}
