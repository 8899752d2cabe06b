import CKernels
import COpenBLAS

// Causal multi-head self-attention for one sequence inside the packed batch. llm.c: attention_forward /
// attention_backward, with the two contractions done by cblas_sgemm per head.

/// out (T, C) = softmax(mask(q·kᵀ/√hs)) · v per head.  qkv is (T, 3C) rows [q | k | v];
/// att holds the probabilities (NH, T, T) for the backward pass.
func attentionForward(_ out: UnsafeMutablePointer<Float>, _ att: UnsafeMutablePointer<Float>, _ qkv: UnsafePointer<Float>,
                      _ T: Int, _ C: Int, _ NH: Int) {
    let hs = C / NH
    let scale = 1 / Float(hs).squareRoot()
    for h in 0..<NH {
        let q = qkv + h * hs, k = qkv + C + h * hs, v = qkv + 2 * C + h * hs
        let a = att + h * T * T
        // preatt = q · kᵀ · scale   (T, T)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(hs),
                    scale, q, Int32(3 * C), k, Int32(3 * C), 0, a, Int32(T))
        // causal mask + softmax, row by row (positions after t get probability 0)
        for t in 0..<T {
            let row = a + t * T
            tov_softmax_inplace(row, Int32(t + 1))
            for j in (t + 1)..<max(T, t + 1) { row[j] = 0 }
        }
        // out_h = att · v   (T, hs), written into the head's columns of out (T, C)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(hs), Int32(T),
                    1, a, Int32(T), v, Int32(3 * C), 0, out + h * hs, Int32(C))
    }
}

/// Writes dqkv (T, 3C) from dout (T, C); datt is scratch of (T, T).
func attentionBackward(_ dqkv: UnsafeMutablePointer<Float>, _ datt: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>,
                       _ qkv: UnsafePointer<Float>, _ att: UnsafePointer<Float>, _ T: Int, _ C: Int, _ NH: Int) {
    let hs = C / NH
    let scale = 1 / Float(hs).squareRoot()
    for h in 0..<NH {
        let q = qkv + h * hs, k = qkv + C + h * hs, v = qkv + 2 * C + h * hs
        let dq = dqkv + h * hs, dk = dqkv + C + h * hs, dv = dqkv + 2 * C + h * hs
        let a = att + h * T * T
        let dy = dout + h * hs
        // in the forward pass this was: out_h = att · v
        // datt = dout_h · vᵀ ;  dv += attᵀ · dout_h
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(hs),
                    1, dy, Int32(C), v, Int32(3 * C), 0, datt, Int32(T))
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(T), Int32(hs), Int32(T),
                    1, a, Int32(T), dy, Int32(C), 0, dv, Int32(3 * C))
        // in the forward pass this was: att = softmax(mask(preatt)); datt becomes dpreatt in place
        for t in 0..<T {
            let d = datt + t * T
            tov_softmax_backward_inplace(d, a + t * T, Int32(t + 1))
            (d + t + 1).update(repeating: 0, count: T - t - 1)
        }
        // in the forward pass this was: preatt = q · kᵀ · scale
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(hs), Int32(T),
                    scale, datt, Int32(T), k, Int32(3 * C), 0, dq, Int32(3 * C))
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(T), Int32(hs), Int32(T),
                    scale, datt, Int32(T), q, Int32(3 * C), 0, dk, Int32(3 * C))
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Causal attention for `queries` consecutive query rows at positions firstPosition..., each attending
/// the keys at positions 0...its own (inference only: no probabilities kept). Query blocks of
/// `ScoringBuffers.queryBlock` rows multiply only against the keys up to the block's last position, so
/// of the masked triangle only the diagonal blocks' part is computed. q, k, v point at head 0 of their
/// first row (k and v at position 0); out (queries, C) has row stride `outStride`; scratch holds
/// queryBlock × (firstPosition + queries) floats.
func causalAttentionForward(_ out: UnsafeMutablePointer<Float>, _ outStride: Int,
                            q: UnsafePointer<Float>, qStride: Int, firstPosition: Int, queries: Int,
                            k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int,
                            C: Int, NH: Int, scratch: UnsafeMutablePointer<Float>) {
    let hs = C / NH
    let scale = 1 / Float(hs).squareRoot()
    let block = ScoringBuffers.queryBlock
    for b in stride(from: 0, to: queries, by: block) {
        let rows = min(block, queries - b)
        let keys = firstPosition + b + rows   // the block's last query sees keys 0..<keys
        for h in 0..<NH {
            // scores = q_block · k[0..<keys]ᵀ · scale   (rows, keys)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keys), Int32(hs),
                        scale, q + b * qStride + h * hs, Int32(qStride), k + h * hs, Int32(kvStride), 0, scratch, Int32(keys))
            for r in 0..<rows {
                let row = scratch + r * keys
                let visible = firstPosition + b + r + 1
                tov_softmax_inplace(row, Int32(visible))
                for j in visible..<keys { row[j] = 0 }
            }
            // out_h = scores · v[0..<keys]   (rows, hs)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(hs), Int32(keys),
                        1, scratch, Int32(keys), v + h * hs, Int32(kvStride), 0, out + b * outStride + h * hs, Int32(outStride))
        }
    }
}
