import CKernels
import COpenBLAS
import Foundation
import Synchronization

// The scoring forward pass: the same network as `Model.forward`, computing only what the loss reads.
//
// - The loss reads the final hidden state at target rows only (~16 of ~128 per row). Layers below the
//   last need every position (their keys and values feed later positions), but in the last layer only
//   keys and values are needed everywhere: its queries, attention output, projection, MLP and the final
//   LayerNorm run on the target rows alone. For the 2 × 128 surrogate that is about a third of all
//   forward FLOPs.
// - Causal attention in query blocks: each block multiplies only against the keys up to its last
//   position, so the masked upper triangle is computed only inside diagonal blocks.
// - The residual stream is updated in place (bias added, then the projection GEMM accumulates with
//   β = 1), the loss is a log-sum-exp per target row (no probability matrix written), and every buffer
//   lives in per-stream storage that is kept between calls: no allocation per batch once warm.
// - LayerNorm, GELU and the softmaxes are the C kernels of Sources/CKernels/elementwise.c, cloned for
//   AVX-512 and AVX2 and picked at load time (the Swift ops are built for baseline SSE2, and float
//   reductions do not vectorise there).
// - Several streams (each scoring its own slice of the batch with single-threaded BLAS) instead of one
//   multi-threaded GEMM per op: the GEMMs here are small, and OpenBLAS's threads spent a quarter of the
//   time spinning in sched_yield between them (docs/performance.md). Elementwise kernels are then
//   parallel too, for free.
// - bf16 linear layers where the CPU has AVX-512 BF16 (ScoringOptions.precision, MatmulBF16.swift; the daemon's default there);
//   attention, LayerNorm, GELU and the loss stay fp32.
// Training keeps `forward(_:keep:)`, which stays the reference (ScoringTests compare the two).

/// One stream's buffers, grown on demand and kept between calls.
final class ScoringBuffers {
    var storage: [Float] = []
    var batch = PackedBatch([], context: 1)
    var x = 0, h = 0, qkv = 0, y = 0, f = 0, att = 0
    var xm = 0, hm = 0, qm = 0, ym = 0, fm = 0, logits = 0
    /// The bf16 kernel's input block (bf16 precision only).
    let bf16Scratch = BF16Scratch()

    static let queryBlock = 32

    func prepare(N: Int, M: Int, C: Int, V: Int, maxT: Int) {
        var offset = 0
        func take(_ n: Int) -> Int { defer { offset += (n + 15) & ~15 }; return offset }   // 64-byte aligned rows for the GEMMs
        x = take(N * C); h = take(N * C); qkv = take(N * 3 * C); y = take(N * C); f = take(N * 4 * C)
        att = take(Self.queryBlock * maxT)
        xm = take(M * C); hm = take(M * C); qm = take(M * C); ym = take(M * C); fm = take(M * 4 * C); logits = take(M * V)
        if storage.count < offset { storage = [Float](repeating: 0, count: offset) }
    }

}

/// OpenBLAS's thread count is process-wide. Scoring streams each want a single-threaded BLAS, while
/// training (possibly on another thread at the same time) wants the configured count: scorers hold a
/// shared "single-threaded" claim and the configured count comes back when the last one leaves.
public enum BLASThreads {
    private struct State {
        var configuredCount = Int(openblas_get_num_threads())
        var singleThreadedUsers = 0
    }
    private static let state = Mutex(State())

    /// Threads for OpenBLAS outside scoring, and the number of scoring streams.
    public static var configured: Int { state.withLock { $0.configuredCount } }

    public static func set(_ threads: Int) {
        state.withLock { state in
            state.configuredCount = max(1, threads)
            if state.singleThreadedUsers == 0 { openblas_set_num_threads(Int32(state.configuredCount)) }
        }
    }

    static func withSingleThreaded<R>(_ body: () -> R) -> R {
        state.withLock { state in
            if state.singleThreadedUsers == 0 { openblas_set_num_threads(1) }
            state.singleThreadedUsers += 1
        }
        defer {
            state.withLock { state in
                state.singleThreadedUsers -= 1
                if state.singleThreadedUsers == 0 { openblas_set_num_threads(Int32(state.configuredCount)) }
            }
        }
        return body()
    }
}

/// Per-target results of one scoring pass.
struct TargetLosses {
    var nll: [Float] = []
    var prob: [Float] = []
}

extension Model {
    /// How `losses` spreads work over cores: `streams` slices of the batch scored concurrently, each
    /// with single-threaded BLAS, or (streams == 1) one pass with OpenBLAS's own threads.
    /// `precision` .bf16 takes effect only where ``ScoringPrecision/isAvailable(_:)``; elsewhere fp32 runs.
    public struct ScoringOptions: Sendable {
        public var streams: Int
        public var precision: ScoringPrecision
        public init(streams: Int = BLASThreads.configured, precision: ScoringPrecision = .fp32) {
            self.streams = max(1, streams)
            self.precision = precision
        }
    }

    /// The bf16-packed weights, packed on first use after a parameter change.
    func packedBF16() -> BF16Weights {
        if let packed = bf16Weights { return packed }
        let packed = params.withUnsafeBufferPointer { pp in
            BF16Weights(ParameterViews(base: UnsafeMutablePointer(mutating: pp.baseAddress!), layout: layout, C: config.width), config)
        }
        bf16Weights = packed
        return packed
    }

    /// Runs the scoring forward pass over `batch` (already packed into `buffers.batch`), with bf16
    /// linear layers when `bf16` is given.
    func scoringForward(_ buffers: ScoringBuffers, bf16: BF16Weights? = nil, into out: inout TargetLosses) {
        let batch = buffers.batch
        let L = config.layers, C = config.width, NH = config.heads, V = config.vocabSize
        let N = batch.N, M = batch.M
        buffers.prepare(N: N, M: M, C: C, V: V, maxT: config.context)
        let scratch = bf16 == nil ? nil : buffers.bf16Scratch.reserve(channels: 4 * C)
        out.nll.removeAll(keepingCapacity: true)
        out.prob.removeAll(keepingCapacity: true)
        guard M > 0 else { return }
        // Read-only access: streams run this concurrently on one model, and a mutable access would
        // copy (and race on) an arena still shared copy-on-write with another model (`copy()`).
        params.withUnsafeBufferPointer { pp in
            let p = ParameterViews(base: UnsafeMutablePointer(mutating: pp.baseAddress!), layout: layout, C: C)
            buffers.storage.withUnsafeMutableBufferPointer { sp in
                // One linear layer: the fp32 weight through BLAS, or its packed copy at `packed` in bf16.
                func linear(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                            _ packed: Int, _ bias: UnsafePointer<Float>?, _ N: Int, _ C: Int, _ OC: Int, accumulate: Bool = false) {
                    if let bf16 {
                        bf16.storage.withUnsafeBufferPointer { w in
                            bf16Linear(out, inp, w.baseAddress! + packed, bias, N, C, OC, accumulate: accumulate, scratch: scratch!)
                        }
                    } else if accumulate {
                        matmulAccumulate(out, inp, weight, bias!, N, C, OC)
                    } else {
                        matmulForward(out, inp, weight, bias, N, C, OC)
                    }
                }
                let s = sp.baseAddress!
                let x = s + buffers.x, h = s + buffers.h, qkv = s + buffers.qkv, y = s + buffers.y, f = s + buffers.f
                let att = s + buffers.att
                batch.tokens.withUnsafeBufferPointer { tokens in
                    batch.positions.withUnsafeBufferPointer { positions in
                        encoderForward(x, tokens.baseAddress!, positions.baseAddress!, p.wte, p.wpe, N, C)
                    }
                }
                // Layers 0..<L-1 at every position.
                for l in 0..<(L - 1) {
                    tov_layernorm_forward(h, x, p.ln1w(l), p.ln1b(l), Int32(N), Int32(C))
                    linear(qkv, h, p.qkvw(l), bf16?.qkv[l] ?? 0, p.qkvb(l), N, C, 3 * C)
                    for (start, T) in zip(batch.starts, batch.lengths) {
                        let row = qkv + start * 3 * C
                        causalAttentionForward(y + start * C, C, q: row, qStride: 3 * C, firstPosition: 0, queries: T,
                                               k: row + C, v: row + 2 * C, kvStride: 3 * C, C: C, NH: NH, scratch: att)
                    }
                    linear(x, y, p.attprojw(l), bf16?.attproj[l] ?? 0, p.attprojb(l), N, C, C, accumulate: true)
                    tov_layernorm_forward(h, x, p.ln2w(l), p.ln2b(l), Int32(N), Int32(C))
                    linear(f, h, p.fcw(l), bf16?.fc[l] ?? 0, p.fcb(l), N, C, 4 * C)
                    tov_gelu_inplace(f, N * 4 * C)
                    linear(x, f, p.fcprojw(l), bf16?.fcproj[l] ?? 0, p.fcprojb(l), N, 4 * C, C, accumulate: true)
                }
                // Last layer: keys and values at every position, everything else at the M target rows.
                let l = L - 1
                let xm = s + buffers.xm, hm = s + buffers.hm, qm = s + buffers.qm, ym = s + buffers.ym, fm = s + buffers.fm
                tov_layernorm_forward(h, x, p.ln1w(l), p.ln1b(l), Int32(N), Int32(C))
                let kv = qkv   // (N, 2C): rows C..<3C of qkvw are the key and value projections
                linear(kv, h, p.qkvw(l) + C * C, bf16?.lastKeyValue ?? 0, p.qkvb(l) + C, N, C, 2 * C)
                for (m, row) in batch.targetRows.enumerated() {
                    (hm + m * C).update(from: h + row * C, count: C)
                    (xm + m * C).update(from: x + row * C, count: C)
                }
                linear(qm, hm, p.qkvw(l), bf16?.lastQuery ?? 0, p.qkvb(l), M, C, C)
                // Each sequence's targets are a contiguous run of increasing positions (Example.layout).
                var m0 = 0
                for (e, start) in batch.starts.enumerated() {
                    let count = batch.targetCounts[e]
                    guard count > 0 else { continue }
                    let firstPosition = batch.targetRows[m0] - start
                    let keys = kv + start * 2 * C
                    causalAttentionForward(ym + m0 * C, C, q: qm + m0 * C, qStride: C, firstPosition: firstPosition, queries: count,
                                           k: keys, v: keys + C, kvStride: 2 * C, C: C, NH: NH, scratch: att)
                    m0 += count
                }
                linear(xm, ym, p.attprojw(l), bf16?.attproj[l] ?? 0, p.attprojb(l), M, C, C, accumulate: true)
                tov_layernorm_forward(hm, xm, p.ln2w(l), p.ln2b(l), Int32(M), Int32(C))
                linear(fm, hm, p.fcw(l), bf16?.fc[l] ?? 0, p.fcb(l), M, C, 4 * C)
                tov_gelu_inplace(fm, M * 4 * C)
                linear(xm, fm, p.fcprojw(l), bf16?.fcproj[l] ?? 0, p.fcprojb(l), M, 4 * C, C, accumulate: true)
                tov_layernorm_forward(hm, xm, p.lnfw, p.lnfb, Int32(M), Int32(C))
                let logits = s + buffers.logits
                linear(logits, hm, p.wte, bf16?.lmHead ?? 0, nil, M, C, V)
                for m in 0..<M {
                    let nll = tov_negative_log_softmax(logits + m * V, Int32(V), batch.targetTokens[m])
                    out.nll.append(nll)
                    out.prob.append(expf(-nll))
                }
            }
        }
    }

    /// Per-example losses from the scoring pass, `options.streams` slices of `batch` at a time.
    func fastLosses(_ batch: [Example], perToken: Bool, maxTokensPerChunk: Int, options: ScoringOptions) -> [ExampleLoss] {
        guard !batch.isEmpty else { return [] }
        let lengths = batch.map { min($0.prompt.count + $0.response.count + 2, config.context) }
        let bounds = Self.sliceBounds(tokenLengths: lengths, streams: options.streams)
        let slices = bounds.count - 1
        while activations.scoring.count < slices { activations.scoring.append(ScoringBuffers()) }
        let perStreamTokens = max(config.context, maxTokensPerChunk / slices)
        // Packed here, before the streams start, since they share it.
        let bf16 = options.precision == .bf16 && ScoringPrecision.isAvailable(.bf16) ? packedBF16() : nil
        var results = [[ExampleLoss]](repeating: [], count: slices)
        func run(_ k: Int) -> [ExampleLoss] {
            scoreSlice(batch[bounds[k]..<bounds[k + 1]], lengths: lengths, buffers: activations.scoring[k], bf16: bf16,
                       perToken: perToken, maxTokensPerChunk: perStreamTokens)
        }
        if slices == 1 {
            results[0] = run(0)
        } else {
            results.withUnsafeMutableBufferPointer { out in
                // Unchecked on purpose: stream k writes only out[k] and its own ScoringBuffers
                // (activations.scoring[k]) and reads the weights, which nothing writes while it runs.
                nonisolated(unsafe) let out = out
                nonisolated(unsafe) let run = run
                BLASThreads.withSingleThreaded {
                    DispatchQueue.concurrentPerform(iterations: slices) { k in out[k] = run(k) }
                }
            }
        }
        return results.flatMap { $0 }
    }

    private func scoreSlice(_ slice: ArraySlice<Example>, lengths: [Int], buffers: ScoringBuffers, bf16: BF16Weights?, perToken: Bool,
                            maxTokensPerChunk: Int) -> [ExampleLoss] {
        var results: [ExampleLoss] = []
        results.reserveCapacity(slice.count)
        var targets = TargetLosses()
        var chunkStart = slice.startIndex
        while chunkStart < slice.endIndex {
            var chunkEnd = chunkStart, tokens = 0
            while chunkEnd < slice.endIndex && (chunkEnd == chunkStart || tokens + lengths[chunkEnd] <= maxTokensPerChunk) {
                tokens += lengths[chunkEnd]
                chunkEnd += 1
            }
            buffers.batch.pack(slice[chunkStart..<chunkEnd], context: config.context)
            scoringForward(buffers, bf16: bf16, into: &targets)
            let packed = buffers.batch
            var m = 0
            for e in 0..<packed.starts.count {
                let count = packed.targetCounts[e]
                var sum = 0.0, psi = 0.0
                for t in m..<(m + count) {
                    sum += Double(targets.nll[t])
                    let pc = min(max(Double(targets.prob[t]), 1e-12), 1 - 1e-7)
                    psi += log(pc * (1 - pc))
                }
                let denominator = Double(max(count, 1))
                results.append(ExampleLoss(meanNLL: Float(sum / denominator), tokenCount: count, psi: Float(psi / denominator),
                                           perToken: perToken ? Array(targets.nll[m..<(m + count)]) : []))
                m += count
            }
            chunkStart = chunkEnd
        }
        return results
    }
}
