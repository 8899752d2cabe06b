import CKernels
import COpenBLAS

// Causal multi-head self-attention for one sequence inside the packed batch. llm.c: attention_forward /
// attention_backward, with the contractions done by cblas_sgemm per head and query block: a block of
// `attentionBlock` query rows multiplies only against the keys up to its last position, so of the
// masked upper triangle only the diagonal blocks are computed (about 60 % of the T×T products at T =
// 255), in the forward and in the backward pass.

/// Query rows per block of the training attention.
let attentionBlock = 64

/// out (T, C) = softmax(mask(q·kᵀ/√hs)) · v per head.  qkv is (T, 3C) rows [q | k | v];
/// att holds the probabilities (NH, T, T) for the backward pass: row t of a block ending at row e is
/// written at columns 0..<e (zero after t), later columns are never read.
/// With `firstQuery` > 0 only query rows firstQuery..<T are computed (training's last layer needs no
/// others) and `out` points at row firstQuery's output.
func attentionForward(_ out: UnsafeMutablePointer<Float>, _ att: UnsafeMutablePointer<Float>, _ qkv: UnsafePointer<Float>,
                      _ T: Int, _ C: Int, _ NH: Int, firstQuery: Int = 0) {
    let hs = C / NH
    let scale = 1 / Float(hs).squareRoot()
    let out = out - firstQuery * C
    for h in 0..<NH {
        let q = qkv + h * hs, k = qkv + C + h * hs, v = qkv + 2 * C + h * hs
        let a = att + h * T * T
        for r0 in stride(from: firstQuery, to: T, by: attentionBlock) {
            let rows = min(attentionBlock, T - r0), keys = r0 + rows
            let block = a + r0 * T
            // preatt = q_block · k[0..<keys]ᵀ · scale   (rows, keys), row stride T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keys), Int32(hs),
                        scale, q + r0 * 3 * C, Int32(3 * C), k, Int32(3 * C), 0, block, Int32(T))
            // causal mask + softmax, row by row (positions after t get probability 0)
            for r in 0..<rows {
                let t = r0 + r, row = block + r * T
                tov_softmax_inplace(row, Int32(t + 1))
                (row + t + 1).update(repeating: 0, count: keys - t - 1)
            }
            // out_h[block] = att[block, 0..<keys] · v[0..<keys]   (rows, hs), into the head's columns of out
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(hs), Int32(keys),
                        1, block, Int32(T), v, Int32(3 * C), 0, out + r0 * C + h * hs, Int32(C))
        }
    }
}

/// Writes dqkv (T, 3C) from dout (T, C); datt is scratch of (T, T). With `firstQuery` > 0 (the forward
/// pass's), dout points at row firstQuery's gradient and dq of the earlier rows is zero.
func attentionBackward(_ dqkv: UnsafeMutablePointer<Float>, _ datt: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>,
                       _ qkv: UnsafePointer<Float>, _ att: UnsafePointer<Float>, _ T: Int, _ C: Int, _ NH: Int, firstQuery: Int = 0) {
    let hs = C / NH
    let scale = 1 / Float(hs).squareRoot()
    let dout = dout - firstQuery * C
    for h in 0..<NH {
        let q = qkv + h * hs, k = qkv + C + h * hs, v = qkv + 2 * C + h * hs
        let dq = dqkv + h * hs, dk = dqkv + C + h * hs, dv = dqkv + 2 * C + h * hs
        let a = att + h * T * T
        let dy = dout + h * hs
        for t in 0..<firstQuery {
            (dq + t * 3 * C).update(repeating: 0, count: hs)
            if firstQuery >= T {   // no queries: no block writes dk and dv
                (dk + t * 3 * C).update(repeating: 0, count: hs)
                (dv + t * 3 * C).update(repeating: 0, count: hs)
            }
        }
        // The last block first: it reaches every key, so its dk and dv overwrite; earlier blocks add.
        var beta: Float = 0
        let lastBlock = firstQuery + max(T - 1 - firstQuery, 0) / attentionBlock * attentionBlock
        for r0 in stride(from: lastBlock, through: firstQuery, by: -attentionBlock) where r0 < T {
            let rows = min(attentionBlock, T - r0), keys = r0 + rows
            let block = a + r0 * T
            // in the forward pass this was: out_h[block] = att[block] · v[0..<keys]
            // datt = dout_h[block] · v[0..<keys]ᵀ  (rows, keys) ;  dv[0..<keys] += att[block]ᵀ · dout_h[block]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keys), Int32(hs),
                        1, dy + r0 * C, Int32(C), v, Int32(3 * C), 0, datt, Int32(keys))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(keys), Int32(hs), Int32(rows),
                        1, block, Int32(T), dy + r0 * C, Int32(C), beta, dv, Int32(3 * C))
            // in the forward pass this was: att = softmax(mask(preatt)); datt becomes dpreatt in place
            for r in 0..<rows {
                let t = r0 + r, d = datt + r * keys
                tov_softmax_backward_inplace(d, block + r * T, Int32(t + 1))
                (d + t + 1).update(repeating: 0, count: keys - t - 1)
            }
            // in the forward pass this was: preatt = q_block · k[0..<keys]ᵀ · scale
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(hs), Int32(keys),
                        scale, datt, Int32(keys), k, Int32(3 * C), 0, dq + r0 * 3 * C, Int32(3 * C))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(keys), Int32(hs), Int32(rows),
                        scale, datt, Int32(keys), q + r0 * 3 * C, Int32(3 * C), beta, dk, Int32(3 * C))
            beta = 1
        }
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
