import CKernels
import COpenBLAS
import Foundation

// A GPT-2-shaped decoder-only transformer in the style of llm.c's train_gpt2.c: one parameter arena
// with views, explicit forward and backward per op, buffers named after the math. Sequences of
// different lengths are packed back to back into (N, C) matrices so each linear layer is one sgemm.

// MARK: - Parameters

/// The parameter tensors in arena order, with their shapes. Gradients and AdamW's m and v share it.
public struct ParameterLayout: Sendable {
    public struct Tensor: Sendable {
        public var name: String
        public var shape: [Int]
        public var offset: Int
        public var count: Int { shape.reduce(1, *) }
        /// Weight decay applies to matrices only (not to biases and LayerNorm parameters).
        public var decays: Bool { shape.count >= 2 && !name.hasSuffix("b") }
    }

    public let tensors: [Tensor]
    public let count: Int

    public init(_ c: ModelConfig) {
        let L = c.layers, C = c.width, V = c.vocabSize, maxT = c.context
        let table: [(String, [Int])] = [
            ("wte", [V, C]), ("wpe", [maxT, C]),
            ("ln1w", [L, C]), ("ln1b", [L, C]),
            ("qkvw", [L, 3 * C, C]), ("qkvb", [L, 3 * C]),
            ("attprojw", [L, C, C]), ("attprojb", [L, C]),
            ("ln2w", [L, C]), ("ln2b", [L, C]),
            ("fcw", [L, 4 * C, C]), ("fcb", [L, 4 * C]),
            ("fcprojw", [L, C, 4 * C]), ("fcprojb", [L, C]),
            ("lnfw", [C]), ("lnfb", [C]),
        ]
        var offset = 0
        var tensors: [Tensor] = []
        for (name, shape) in table {
            tensors.append(Tensor(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        self.tensors = tensors
        self.count = offset
    }

    public func tensor(_ name: String) -> Tensor { tensors.first { $0.name == name }! }
}

/// Pointers into one arena (parameters or their gradients), per tensor; `l` variants index a layer.
struct ParameterViews {
    let base: UnsafeMutablePointer<Float>
    let layout: ParameterLayout
    let C: Int

    private func at(_ index: Int) -> UnsafeMutablePointer<Float> { base + layout.tensors[index].offset }
    var wte: UnsafeMutablePointer<Float> { at(0) }
    var wpe: UnsafeMutablePointer<Float> { at(1) }
    func ln1w(_ l: Int) -> UnsafeMutablePointer<Float> { at(2) + l * C }
    func ln1b(_ l: Int) -> UnsafeMutablePointer<Float> { at(3) + l * C }
    func qkvw(_ l: Int) -> UnsafeMutablePointer<Float> { at(4) + l * 3 * C * C }
    func qkvb(_ l: Int) -> UnsafeMutablePointer<Float> { at(5) + l * 3 * C }
    func attprojw(_ l: Int) -> UnsafeMutablePointer<Float> { at(6) + l * C * C }
    func attprojb(_ l: Int) -> UnsafeMutablePointer<Float> { at(7) + l * C }
    func ln2w(_ l: Int) -> UnsafeMutablePointer<Float> { at(8) + l * C }
    func ln2b(_ l: Int) -> UnsafeMutablePointer<Float> { at(9) + l * C }
    func fcw(_ l: Int) -> UnsafeMutablePointer<Float> { at(10) + l * 4 * C * C }
    func fcb(_ l: Int) -> UnsafeMutablePointer<Float> { at(11) + l * 4 * C }
    func fcprojw(_ l: Int) -> UnsafeMutablePointer<Float> { at(12) + l * 4 * C * C }
    func fcprojb(_ l: Int) -> UnsafeMutablePointer<Float> { at(13) + l * C }
    var lnfw: UnsafeMutablePointer<Float> { at(14) }
    var lnfb: UnsafeMutablePointer<Float> { at(15) }
}

// MARK: - Packed batch

/// A batch of examples laid out as one packed token sequence.
struct PackedBatch {
    var tokens: [Int32] = []       // (N) model inputs
    var positions: [Int32] = []    // (N) position of each token inside its sequence
    var starts: [Int] = []         // first row of each sequence
    var lengths: [Int] = []        // T of each sequence
    var targetRows: [Int] = []     // (M) packed row whose output predicts a target
    var targetTokens: [Int32] = [] // (M)
    var targetExample: [Int] = []  // (M) example index of each target
    var targetCounts: [Int] = []   // per example

    init(_ examples: [Example], context: Int) {
        pack(examples[...], context: context)
    }

    /// Refills the batch with `examples`, keeping the arrays' capacity (scoring reuses one per stream).
    mutating func pack(_ examples: ArraySlice<Example>, context: Int) {
        tokens.removeAll(keepingCapacity: true); positions.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true); lengths.removeAll(keepingCapacity: true)
        targetRows.removeAll(keepingCapacity: true); targetTokens.removeAll(keepingCapacity: true)
        targetExample.removeAll(keepingCapacity: true); targetCounts.removeAll(keepingCapacity: true)
        for (e, example) in examples.enumerated() {
            let (input, targets) = example.layout(context: context)
            let start = tokens.count
            starts.append(start)
            lengths.append(input.count)
            tokens.append(contentsOf: input)
            for t in 0..<input.count { positions.append(Int32(t)) }
            for (position, token) in targets {
                targetRows.append(start + position)
                targetTokens.append(token)
                targetExample.append(e)
            }
            targetCounts.append(targets.count)
        }
    }

    var N: Int { tokens.count }
    var M: Int { targetRows.count }
    /// Σ NH·T² floats of attention probabilities.
    func attentionSize(heads: Int) -> Int { lengths.reduce(0) { $0 + heads * $1 * $1 } }
}

// MARK: - Model

/// The surrogate language model. Not thread-safe: it owns activation buffers; give each thread its own.
public final class Model {
    public let config: ModelConfig
    public let layout: ParameterLayout
    /// The parameter arena (order: ``ParameterLayout``). Any write drops the bf16 copy scoring packs.
    var params: [Float] { didSet { bf16Weights = nil } }
    /// The weights packed for bf16 scoring (``packedBF16()``), nil until first used.
    var bf16Weights: BF16Weights?
    var grads: [Float] = []
    var adamM: [Float] = []
    var adamV: [Float] = []
    var adamStep = 0

    /// GPT-2 initialisation: N(0, 0.02) for matrices, residual projections scaled by 1/√(2L),
    /// zero biases, unit LayerNorm gains.
    public init(config: ModelConfig, seed: UInt64) {
        self.config = config
        self.layout = ParameterLayout(config)
        var random = Gaussian(seed: seed)
        var params = [Float](repeating: 0, count: layout.count)
        let residualScale = 1 / Float(2 * config.layers).squareRoot()
        for tensor in layout.tensors {
            let range = tensor.offset..<(tensor.offset + tensor.count)
            switch tensor.name {
            case "ln1w", "ln2w", "lnfw": for i in range { params[i] = 1 }
            case "attprojw", "fcprojw": for i in range { params[i] = 0.02 * residualScale * random.next() }
            case let name where name.hasSuffix("w") || name == "wte" || name == "wpe": for i in range { params[i] = 0.02 * random.next() }
            default: break
            }
        }
        self.params = params
    }

    /// Loads weights, e.g. from a checkpoint. Throws when the count does not fit the config.
    public init(config: ModelConfig, parameters: [Float]) throws {
        let layout = ParameterLayout(config)
        guard parameters.count == layout.count else {
            throw SurrogateError(.checkpoint, "the checkpoint holds \(parameters.count) parameters but a \(config.layers)×\(config.width) model with vocab \(config.vocabSize) needs \(layout.count); the file belongs to another model")
        }
        self.config = config
        self.layout = layout
        self.params = parameters
    }

    /// The flat parameter arena.
    public var parameters: [Float] { params }

    /// A deep copy of the weights with fresh optimizer state (ToV forks θ_val from θ_bas).
    public func copy() -> Model {
        try! Model(config: config, parameters: params)
    }

    public var parameterCount: Int { layout.count }

    // MARK: Activations

    /// Buffers of one forward pass, named after llm.c's ActivationTensors. Kept between calls and
    /// grown on demand. With `keep == false` every layer reuses layer 0's buffers (scoring needs no
    /// backward pass).
    final class Activations {
        var storage: [Float] = []
        var N = 0, M = 0, A = 0, layersKept = 0
        var encoded = 0, lnf = 0, lnfMean = 0, lnfRstd = 0, gathered = 0, probs = 0
        var layer: [(ln1: Int, ln1Mean: Int, ln1Rstd: Int, qkv: Int, atty: Int, att: Int, attproj: Int, residual2: Int,
                     ln2: Int, ln2Mean: Int, ln2Rstd: Int, fch: Int, fchGelu: Int, fcproj: Int, residual3: Int)] = []

        func prepare(N: Int, M: Int, A: Int, C: Int, V: Int, layers: Int, keep: Bool) {
            var offset = 0
            func take(_ n: Int) -> Int { defer { offset += (n + 15) & ~15 }; return offset }   // 64-byte aligned rows for the GEMMs
            encoded = take(N * C)
            let kept = keep ? layers : 1
            layer = (0..<kept).map { _ in
                (take(N * C), take(N), take(N), take(N * 3 * C), take(N * C), take(A), take(N * C), take(N * C),
                 take(N * C), take(N), take(N), take(N * 4 * C), take(N * 4 * C), take(N * C), take(N * C))
            }
            lnf = take(N * C); lnfMean = take(N); lnfRstd = take(N)
            gathered = take(M * C); probs = take(M * V)
            if storage.count < offset { storage = [Float](repeating: 0, count: offset) }
            self.N = N; self.M = M; self.A = A; layersKept = kept
        }

        /// Training's last layer runs after attention on each sequence's tail only: the rows from its
        /// first target on (the response, or all rows when every position is a target), packed as K
        /// rows. Per sequence the tail's first position and its first packed row; per target its row
        /// in that packing (`finalRows`, the row the final LayerNorm output is read at).
        var tailStarts: [Int] = [], tailOffsets: [Int] = [], finalRows: [Int] = [], K = 0

        /// The backward pass's scratch (kept between steps: no allocation or page faults per step).
        var backward: [Float] = []
        var dresidual = 0, d1 = 0, d2 = 0, dln = 0, datt = 0, dgathered = 0, dtail = 0

        func prepareBackward(N: Int, M: Int, K: Int, C: Int, maxT: Int) {
            var offset = 0
            func take(_ n: Int) -> Int { defer { offset += (n + 15) & ~15 }; return offset }
            dresidual = take(N * C); d1 = take(N * 4 * C); d2 = take(N * 4 * C); dln = take(N * C)
            datt = take(maxT * maxT); dgathered = take(M * C); dtail = take(K * C)
            if backward.count < offset { backward = [Float](repeating: 0, count: offset) }
        }

        /// A second training stream's gradient arena (the first stream writes the model's own).
        var grads: [Float] = []

        /// The bf16 kernel's input block of this stream (bf16 training only).
        let bf16Scratch = BF16Scratch()

        /// The scoring pass's buffers, one per stream (Model+Scoring.swift).
        var scoring: [ScoringBuffers] = []
    }

    private(set) var activations = Activations()
    /// Activations of the training streams after the first (which uses `activations`).
    private var trainingStreams: [Activations] = []
    /// Each step's weights packed for bf16 training (``TrainingPrecision/bf16``), allocated on first use.
    private var trainingBF16: BF16TrainingWeights?

    /// Makes this model use `other`'s forward buffers from now on. Models that only ever run one at
    /// a time (a worker's θ_bas^1..L and θ_val^1..L) then hold one set of activations between them
    /// instead of one each, which is most of a worker's memory. Never share between models used
    /// concurrently or between a model being trained and another one.
    public func shareActivations(with other: Model) {
        activations = other.activations
    }

    // MARK: Forward

    /// Runs the network on `batch` and leaves softmax probabilities of each target row in
    /// `activations.probs` (M, V). Returns per-target NLL. With `bf16` (training only) the linear layers
    /// take bf16 operands from this step's packed weights.
    func forward(_ batch: PackedBatch, keep: Bool, into buffers: Activations? = nil, bf16: BF16TrainingWeights? = nil) -> [Float] {
        let L = config.layers, C = config.width, NH = config.heads, V = config.vocabSize
        let N = batch.N, M = batch.M
        let act = buffers ?? activations
        act.prepare(N: N, M: M, A: batch.attentionSize(heads: NH), C: C, V: V, layers: L, keep: keep)
        // Training (keep) trims the last layer to the sequences' tails; the reference forward does not.
        let trim = keep && L > 0
        act.tailStarts = batch.lengths
        for (row, e) in zip(batch.targetRows, batch.targetExample) { act.tailStarts[e] = min(act.tailStarts[e], row - batch.starts[e]) }
        act.tailOffsets.removeAll(keepingCapacity: true)
        act.K = 0
        for (start, T) in zip(act.tailStarts, batch.lengths) { act.tailOffsets.append(act.K); act.K += T - start }
        act.finalRows = zip(batch.targetRows, batch.targetExample).map { row, e in
            trim ? act.tailOffsets[e] + row - batch.starts[e] - act.tailStarts[e] : row
        }
        let K = act.K
        var nll = [Float](repeating: 0, count: M)
        let scratch = bf16 == nil ? nil : act.bf16Scratch.reserve(channels: max(4 * C, V))
        // Read-only access: training streams run this concurrently on one model.
        params.withUnsafeBufferPointer { pp in
            let p = ParameterViews(base: UnsafeMutablePointer(mutating: pp.baseAddress!), layout: layout, C: C)
            // One linear layer: the fp32 weight through BLAS, or this step's bf16 copy of it at `packed`.
            func linear(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                        _ packed: Int?, _ bias: UnsafePointer<Float>?, _ N: Int, _ C: Int, _ OC: Int) {
                if let bf16, let packed {
                    bf16Linear(out, inp, bf16.storage + packed, bias, N, C, OC, accumulate: false, scratch: scratch!)
                } else {
                    matmulForward(out, inp, weight, bias, N, C, OC)
                }
            }
            act.storage.withUnsafeMutableBufferPointer { sp in
                let s = sp.baseAddress!
                batch.tokens.withUnsafeBufferPointer { tokens in
                    batch.positions.withUnsafeBufferPointer { positions in
                        encoderForward(s + act.encoded, tokens.baseAddress!, positions.baseAddress!, p.wte, p.wpe, N, C)
                    }
                }
                var residual = UnsafePointer(s + act.encoded)
                for l in 0..<L {
                    let a = act.layer[keep ? l : 0]
                    // The last layer of training: queries, and everything after attention, on the K tail rows.
                    let tail = trim && l == L - 1
                    let n = tail ? K : N
                    tov_layernorm_forward_stats(s + a.ln1, s + a.ln1Mean, s + a.ln1Rstd, residual, p.ln1w(l), p.ln1b(l), Int32(N), Int32(C))
                    linear(s + a.qkv, s + a.ln1, p.qkvw(l), bf16?.qkv[l].w, p.qkvb(l), N, C, 3 * C)
                    var attOffset = a.att
                    for (e, (start, T)) in zip(batch.starts, batch.lengths).enumerated() {
                        if tail {
                            attentionForward(s + a.atty + act.tailOffsets[e] * C, s + attOffset, s + a.qkv + start * 3 * C, T, C, NH,
                                             firstQuery: act.tailStarts[e])
                        } else {
                            attentionForward(s + a.atty + start * C, s + attOffset, s + a.qkv + start * 3 * C, T, C, NH)
                        }
                        attOffset += NH * T * T
                    }
                    linear(s + a.attproj, s + a.atty, p.attprojw(l), bf16?.attproj[l].w, p.attprojb(l), n, C, C)
                    if tail {
                        // residual2 = residualIn + attproj on the tail rows (contiguous per sequence)
                        for (e, start) in batch.starts.enumerated() {
                            let rows = (e + 1 < act.tailOffsets.count ? act.tailOffsets[e + 1] : K) - act.tailOffsets[e]
                            (s + a.residual2 + act.tailOffsets[e] * C).update(from: residual + (start + act.tailStarts[e]) * C, count: rows * C)
                        }
                        tov_add_inplace(s + a.residual2, s + a.attproj, K * C)
                    } else {
                        tov_add(s + a.residual2, residual, s + a.attproj, N * C)
                    }
                    tov_layernorm_forward_stats(s + a.ln2, s + a.ln2Mean, s + a.ln2Rstd, s + a.residual2, p.ln2w(l), p.ln2b(l), Int32(n), Int32(C))
                    linear(s + a.fch, s + a.ln2, p.fcw(l), bf16?.fc[l].w, p.fcb(l), n, C, 4 * C)
                    tov_gelu_forward(s + a.fchGelu, s + a.fch, n * 4 * C)
                    linear(s + a.fcproj, s + a.fchGelu, p.fcprojw(l), bf16?.fcproj[l].w, p.fcprojb(l), n, 4 * C, C)
                    tov_add(s + a.residual3, s + a.residual2, s + a.fcproj, n * C)
                    residual = UnsafePointer(s + a.residual3)
                }
                let finalN = trim ? K : N
                tov_layernorm_forward_stats(s + act.lnf, s + act.lnfMean, s + act.lnfRstd, residual, p.lnfw, p.lnfb, Int32(finalN), Int32(C))
                // Only rows that predict a target need logits: gather them, then one sgemm against wteᵀ.
                for (m, row) in act.finalRows.enumerated() {
                    (s + act.gathered + m * C).update(from: s + act.lnf + row * C, count: C)
                }
                linear(s + act.probs, s + act.gathered, p.wte, bf16?.lmHead.w, nil, M, C, V)
                for m in 0..<M {
                    let row = s + act.probs + m * V
                    tov_softmax_inplace(row, Int32(V))
                    nll[m] = -logf(max(row[Int(batch.targetTokens[m])], Float.leastNormalMagnitude))
                }
            }
        }
        return nll
    }

    /// Per-example losses (mean NLL over the response targets, ψ, token count), in chunks of at most
    /// `maxTokensPerChunk` packed tokens so memory stays bounded whatever the batch. Runs the scoring
    /// pass (Model+Scoring.swift), which computes only what the loss reads.
    public func losses(_ batch: [Example], perToken: Bool = false, maxTokensPerChunk: Int = 8192,
                       options: ScoringOptions = ScoringOptions()) -> [ExampleLoss] {
        fastLosses(batch, perToken: perToken, maxTokensPerChunk: maxTokensPerChunk, options: options)
    }

    /// The same losses through the training forward pass (every op at every position, one stream):
    /// the reference the scoring pass is tested against, and the "before" of `tovd bench score`.
    public func referenceLosses(_ batch: [Example], perToken: Bool = false, maxTokensPerChunk: Int = 8192) -> [ExampleLoss] {
        var results: [ExampleLoss] = []
        results.reserveCapacity(batch.count)
        var chunk: [Example] = []
        var chunkTokens = 0
        func flush() {
            guard !chunk.isEmpty else { return }
            let packed = PackedBatch(chunk, context: config.context)
            let nll = forward(packed, keep: false)
            let V = config.vocabSize
            var sums = [Double](repeating: 0, count: chunk.count)
            var psis = [Double](repeating: 0, count: chunk.count)
            var perTokens = [[Float]](repeating: [], count: chunk.count)
            activations.storage.withUnsafeBufferPointer { sp in
                for m in 0..<packed.M {
                    let e = packed.targetExample[m]
                    sums[e] += Double(nll[m])
                    let prob = Double(sp[activations.probs + m * V + Int(packed.targetTokens[m])])
                    let pc = min(max(prob, 1e-12), 1 - 1e-7)
                    psis[e] += log(pc * (1 - pc))
                    if perToken { perTokens[e].append(nll[m]) }
                }
            }
            for e in 0..<chunk.count {
                let count = packed.targetCounts[e]
                let denominator = Double(max(count, 1))
                results.append(ExampleLoss(meanNLL: Float(sums[e] / denominator), tokenCount: count,
                                           psi: Float(psis[e] / denominator), perToken: perTokens[e]))
            }
            chunk.removeAll(keepingCapacity: true)
            chunkTokens = 0
        }
        for example in batch {
            let length = min(example.prompt.count + example.response.count + 2, config.context)
            if chunkTokens + length > maxTokensPerChunk { flush() }
            chunk.append(example)
            chunkTokens += length
        }
        flush()
        return results
    }

    // MARK: Backward

    /// Where `streams` concurrent streams cut a batch of examples of these token lengths: contiguous
    /// slices of about equal tokens, so the streams finish together (training and scoring alike). The
    /// slices' starts, then the end; at most `streams` slices, and one for an empty batch.
    static func sliceBounds(tokenLengths lengths: [Int], streams: Int) -> [Int] {
        let wanted = min(streams, lengths.count)
        var bounds = [0]
        let total = lengths.reduce(0, +)
        var running = 0
        for (i, length) in lengths.enumerated() {
            running += length
            if bounds.count < wanted, running * wanted >= total * bounds.count, i + 1 < lengths.count { bounds.append(i + 1) }
        }
        bounds.append(lengths.count)
        return bounds
    }

    /// Forward + backward on `examples`; fills `grads` (zeroed first) and returns the batch loss =
    /// mean over examples of each example's mean NLL. With `streams` > 1 the batch is cut into that
    /// many contiguous slices of about equal tokens, each run concurrently with single-threaded BLAS into
    /// its own gradient arena, and the arenas are summed (in a fixed order, so a seed still gives the
    /// same weights on one machine): the GEMMs of one slice are small enough that OpenBLAS's threads
    /// spend much of a step waiting on each other, and the elementwise ops run on both cores for free.
    /// `precision` .bf16 packs this step's weights once for every stream, where the CPU runs bf16.
    @discardableResult
    func forwardBackward(_ examples: [Example], streams: Int = 1, precision: TrainingPrecision = .fp32) -> Float {
        if grads.count != layout.count { grads = [Float](repeating: 0, count: layout.count) }
        var bf16: BF16TrainingWeights?
        if precision == .bf16, ScoringPrecision.isAvailable(.bf16) {
            let packed = trainingBF16 ?? BF16TrainingWeights(config)
            params.withUnsafeBufferPointer { pp in
                packed.pack(ParameterViews(base: UnsafeMutablePointer(mutating: pp.baseAddress!), layout: layout, C: config.width))
            }
            trainingBF16 = packed
            bf16 = packed
        }
        let E = Float(max(examples.count, 1))
        let lengths = examples.map { min($0.prompt.count + $0.response.count + 2, config.context) }
        let bounds = Self.sliceBounds(tokenLengths: lengths, streams: streams)
        let slices = bounds.count - 1
        if slices <= 1 {
            let batch = PackedBatch(examples, context: config.context)
            return grads.withUnsafeMutableBufferPointer { g in
                passForwardBackward(batch, examples: E, act: activations, grads: g.baseAddress!, bf16: bf16)
            }
        }
        while trainingStreams.count < slices - 1 { trainingStreams.append(Activations()) }
        let buffers = [activations] + trainingStreams.prefix(slices - 1)
        for b in buffers.dropFirst() where b.grads.count != layout.count { b.grads = [Float](repeating: 0, count: layout.count) }
        let batches = (0..<slices).map { PackedBatch(examples[bounds[$0]..<bounds[$0 + 1]].map { $0 }, context: config.context) }
        var losses = [Float](repeating: 0, count: slices)
        grads.withUnsafeMutableBufferPointer { first in
            let first = first.baseAddress!
            func run(_ k: Int) -> Float {
                if k == 0 { return passForwardBackward(batches[0], examples: E, act: buffers[0], grads: first, bf16: bf16) }
                return buffers[k].grads.withUnsafeMutableBufferPointer { g in
                    passForwardBackward(batches[k], examples: E, act: buffers[k], grads: g.baseAddress!, bf16: bf16)
                }
            }
            losses.withUnsafeMutableBufferPointer { out in
                // Unchecked on purpose: stream k writes only out[k], its own Activations (buffers[k]) and
                // gradient arena, and reads the weights, which nothing writes while it runs.
                nonisolated(unsafe) let out = out
                nonisolated(unsafe) let run = run
                BLASThreads.withSingleThreaded {
                    DispatchQueue.concurrentPerform(iterations: slices) { k in out[k] = run(k) }
                }
            }
            // Summed on every core, each range in stream order (ArenaChunks): the same bits as one pass.
            // Unchecked on purpose: each range writes only its own part of the first arena and reads the others.
            nonisolated(unsafe) let sum = first, others = Array(buffers.dropFirst())
            ArenaChunks(count: layout.count, parts: slices).run { range in
                for other in others {
                    other.grads.withUnsafeBufferPointer { tov_add_inplace(sum + range.lowerBound, $0.baseAddress! + range.lowerBound, range.count) }
                }
            }
        }
        return losses.reduce(0, +)
    }

    /// One stream's forward and backward: `batch` (part of a batch of `E` examples) through `act`,
    /// gradients written into `gradients` (the arena, zeroed here). Returns this part's share of the loss.
    private func passForwardBackward(_ batch: PackedBatch, examples E: Float, act: Activations,
                                     grads gradients: UnsafeMutablePointer<Float>, bf16: BF16TrainingWeights?) -> Float {
        let L = config.layers, C = config.width, NH = config.heads, V = config.vocabSize
        let nll = forward(batch, keep: true, into: act, bf16: bf16)
        let scratch = act.bf16Scratch.pointer   // reserved by `forward` for bf16, wide enough for V and 4C
        // The input-gradient GEMM's bf16 operands for the weight whose transpose is packed at `wt`.
        func transposed(_ wt: Int?) -> (transposed: UnsafePointer<UInt16>, scratch: UnsafeMutablePointer<UInt16>)? {
            guard let bf16, let wt, let scratch else { return nil }
            return (UnsafePointer(bf16.storage + wt), scratch)
        }
        let N = batch.N, M = batch.M
        var loss: Float = 0
        for m in 0..<M { loss += nll[m] / (Float(batch.targetCounts[batch.targetExample[m]]) * E) }

        gradients.update(repeating: 0, count: layout.count)
        let maxT = batch.lengths.max() ?? 1
        let K = act.K
        act.prepareBackward(N: N, M: M, K: K, C: C, maxT: maxT)

        params.withUnsafeBufferPointer { pp in
        act.storage.withUnsafeMutableBufferPointer { sp in
        act.backward.withUnsafeMutableBufferPointer { bp in
            let p = ParameterViews(base: UnsafeMutablePointer(mutating: pp.baseAddress!), layout: layout, C: C)
            let g = ParameterViews(base: gradients, layout: layout, C: C)
            let s = sp.baseAddress!, b = bp.baseAddress!
            let dres = b + act.dresidual, d1 = b + act.d1, d2 = b + act.d2, dlnBuffer = b + act.dln
            let datt = b + act.datt, dgathered = b + act.dgathered, dtail = b + act.dtail

            // in the forward pass this was: probs = softmax(gathered · wteᵀ); loss = mean_e mean_t −log p
            // dlogits = (probs − onehot) / (T_e · E), computed in place over probs
            let dlogits = s + act.probs
            for m in 0..<M {
                let row = dlogits + m * V
                let scale = 1 / (Float(batch.targetCounts[batch.targetExample[m]]) * E)
                for v in 0..<V { row[v] *= scale }
                row[Int(batch.targetTokens[m])] -= scale
            }
            matmulBackward(dgathered, g.wte, nil, dlogits, s + act.gathered, p.wte, M, C, V, accumulate: false,
                           bf16: transposed(bf16?.lmHead.wt))
            // in the forward pass this was: gathered[m] = lnf[finalRows[m]] (a tail row in training)
            let finalN = L > 0 ? K : N
            dlnBuffer.update(repeating: 0, count: finalN * C)
            for (m, row) in act.finalRows.enumerated() {
                tov_add_inplace(dlnBuffer + row * C, dgathered + m * C, C)
            }
            // in the forward pass this was: lnf = layerNorm(residual_L); the last layer's rows are the
            // tail's, whose gradient goes into dtail until that layer's attention
            let lastResidual = L > 0 ? act.layer[L - 1].residual3 : act.encoded
            let dtop = L > 0 ? dtail : dres
            dtop.update(repeating: 0, count: finalN * C)
            tov_layernorm_backward(dtop, g.lnfw, g.lnfb, dlnBuffer, s + lastResidual, p.lnfw, s + act.lnfMean, s + act.lnfRstd, Int32(finalN), Int32(C))

            for l in stride(from: L - 1, through: 0, by: -1) {
                let a = act.layer[l]
                let residualIn = l == 0 ? act.encoded : act.layer[l - 1].residual3
                let tail = l == L - 1
                let n = tail ? K : N, dr = tail ? dtail : dres
                // residual3 = residual2 + fcproj: dr already holds dresidual3, which is also dfcproj
                // fcproj = fchGelu · fcprojwᵀ + fcprojb
                matmulBackward(d1, g.fcprojw(l), g.fcprojb(l), dr, s + a.fchGelu, p.fcprojw(l), n, 4 * C, C, accumulate: false,
                               bf16: transposed(bf16?.fcproj[l].wt))
                // fchGelu = gelu(fch)
                tov_gelu_backward(d2, s + a.fch, d1, n * 4 * C)
                // fch = ln2 · fcwᵀ + fcb
                matmulBackward(dlnBuffer, g.fcw(l), g.fcb(l), d2, s + a.ln2, p.fcw(l), n, C, 4 * C, accumulate: false,
                               bf16: transposed(bf16?.fc[l].wt))
                // ln2 = layerNorm(residual2): accumulate into dr, which becomes dresidual2
                tov_layernorm_backward(dr, g.ln2w(l), g.ln2b(l), dlnBuffer, s + a.residual2, p.ln2w(l), s + a.ln2Mean, s + a.ln2Rstd, Int32(n), Int32(C))
                // residual2 = residualIn + attproj: dattproj = dresidual2
                // attproj = atty · attprojwᵀ + attprojb
                matmulBackward(d1, g.attprojw(l), g.attprojb(l), dr, s + a.atty, p.attprojw(l), n, C, C, accumulate: false,
                               bf16: transposed(bf16?.attproj[l].wt))
                // atty = attention(qkv), per sequence (each writes its own rows of dqkv)
                var attOffset = a.att
                for (e, (start, T)) in zip(batch.starts, batch.lengths).enumerated() {
                    if tail {
                        attentionBackward(d2 + start * 3 * C, datt, d1 + act.tailOffsets[e] * C, s + a.qkv + start * 3 * C, s + attOffset, T, C, NH,
                                          firstQuery: act.tailStarts[e])
                    } else {
                        attentionBackward(d2 + start * 3 * C, datt, d1 + start * C, s + a.qkv + start * 3 * C, s + attOffset, T, C, NH)
                    }
                    attOffset += NH * T * T
                }
                // qkv = ln1 · qkvwᵀ + qkvb
                matmulBackward(dlnBuffer, g.qkvw(l), g.qkvb(l), d2, s + a.ln1, p.qkvw(l), N, C, 3 * C, accumulate: false,
                               bf16: transposed(bf16?.qkv[l].wt))
                if tail {
                    // residual2 = residualIn + attproj on the tail rows: dresidualIn is dresidual2 there, 0 elsewhere
                    dres.update(repeating: 0, count: N * C)
                    for (e, start) in batch.starts.enumerated() {
                        let rows = (e + 1 < act.tailOffsets.count ? act.tailOffsets[e + 1] : K) - act.tailOffsets[e]
                        (dres + (start + act.tailStarts[e]) * C).update(from: dtail + act.tailOffsets[e] * C, count: rows * C)
                    }
                }
                // ln1 = layerNorm(residualIn): dres becomes dresidualIn
                tov_layernorm_backward(dres, g.ln1w(l), g.ln1b(l), dlnBuffer, s + residualIn, p.ln1w(l), s + a.ln1Mean, s + a.ln1Rstd, Int32(N), Int32(C))
            }
            // in the forward pass this was: encoded = wte[tokens] + wpe[positions]
            batch.tokens.withUnsafeBufferPointer { tokens in
                batch.positions.withUnsafeBufferPointer { positions in
                    encoderBackward(g.wte, g.wpe, dres, tokens.baseAddress!, positions.baseAddress!, N, C)
                }
            }
        }}}
        return loss
    }
}

/// Standard normal draws (Box–Muller over SplitMix64), for reproducible initialisation.
struct Gaussian {
    var state: UInt64
    var spare: Float?

    init(seed: UInt64) { state = seed ^ 0x5DEE_CE66_D1CE_5EED }

    mutating func nextUInt64() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform() -> Double { Double(nextUInt64() >> 11) * 0x1.0p-53 }

    mutating func next() -> Float {
        if let spare { self.spare = nil; return spare }
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        let r = (-2 * log(u1)).squareRoot()
        spare = Float(r * sin(2 * .pi * u2))
        return Float(r * cos(2 * .pi * u2))
    }
}
