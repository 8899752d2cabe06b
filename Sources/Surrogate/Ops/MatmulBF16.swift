import CKernels
import Dispatch

// The bf16 linear layers (Sources/CKernels/bf16.c): weights packed to bf16, inputs rounded per call,
// products and sums in fp32 (AVX-512 BF16's VDPBF16PS), and only where the CPU reports avx512_bf16.
// The scoring pass packs once per model (there bf16 is the daemon's and the evaluation's default,
// ``ScoringPrecision/preferred``); opt-in bf16 training repacks every step (``TrainingPrecision``).

/// Which arithmetic the scoring pass's linear layers use.
public enum ScoringPrecision: String, Sendable, CaseIterable {
    case fp32
    /// bf16 weights and activations, fp32 accumulation: ~2.1× the GEMM rate of fp32 where AVX-512 BF16
    /// exists. Losses move by well under 2 % (BF16Tests); `tovd bench score` reports the Spearman of φ
    /// with fp32 and the overlap of the selections made from each.
    case bf16

    /// Whether this CPU can run `precision` (read at run time from the kernel's CPU flags).
    public static func isAvailable(_ precision: ScoringPrecision) -> Bool {
        precision == .fp32 || CPUFeatures.hasAVX512BF16
    }

    /// What the daemon and `tovd evaluate` score with unless told otherwise: bf16 where the CPU has it,
    /// because on real rows it ranks φ as fp32 does (Spearman 1.0000, the same Score+Random selection)
    /// at ~1.6× the rows/s (docs/performance.md, "bf16 scoring"); fp32 elsewhere.
    public static var preferred: ScoringPrecision { isAvailable(.bf16) ? .bf16 : .fp32 }
}

/// A model's weight matrices packed for ``bf16Linear``, built on first bf16 use and dropped when the
/// parameters change. The last layer's query and key/value rows are packed apart because the scoring
/// pass runs them on different rows.
final class BF16Weights {
    private(set) var storage: [UInt16] = []
    private(set) var qkv: [Int] = [], attproj: [Int] = [], fc: [Int] = [], fcproj: [Int] = []
    private(set) var lastQuery = 0, lastKeyValue = 0, lmHead = 0

    init(_ p: ParameterViews, _ config: ModelConfig) {
        let L = config.layers, C = config.width
        var offset = 0
        var pending: [(offset: Int, weight: UnsafePointer<Float>, OC: Int, C: Int)] = []
        func add(_ weight: UnsafePointer<Float>, _ OC: Int, _ C: Int) -> Int {
            defer { offset += tov_bf16_packed_count(Int32(OC), Int32(C)) }
            pending.append((offset, weight, OC, C))
            return offset
        }
        for l in 0..<L {
            if l < L - 1 {
                qkv.append(add(p.qkvw(l), 3 * C, C))
            } else {
                lastQuery = add(p.qkvw(l), C, C)
                lastKeyValue = add(p.qkvw(l) + C * C, 2 * C, C)
            }
            attproj.append(add(p.attprojw(l), C, C))
            fc.append(add(p.fcw(l), 4 * C, C))
            fcproj.append(add(p.fcprojw(l), C, 4 * C))
        }
        lmHead = add(p.wte, config.vocabSize, C)
        storage = [UInt16](repeating: 0, count: offset)
        storage.withUnsafeMutableBufferPointer { s in
            for item in pending { tov_bf16_pack(s.baseAddress! + item.offset, item.weight, Int32(item.OC), Int32(item.C)) }
        }
    }
}

/// out = inp · Wᵀ + bias (or out += inp · Wᵀ + bias with `accumulate`), W given packed at `packed`.
/// `scratch` holds at least tov_bf16_scratch_count(C) elements.
func bf16Linear(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ packed: UnsafePointer<UInt16>,
                _ bias: UnsafePointer<Float>?, _ N: Int, _ C: Int, _ OC: Int, accumulate: Bool,
                scratch: UnsafeMutablePointer<UInt16>) {
    if let bias {
        for n in 0..<N {
            let row = out + n * OC
            if accumulate {
                for o in 0..<OC { row[o] += bias[o] }
            } else {
                row.update(from: bias, count: OC)
            }
        }
    }
    tov_bf16_gemm_avx512(out, inp, Int32(N), Int32(C), packed, Int32(OC), accumulate || bias != nil ? 1 : 0, scratch)
}

/// Which arithmetic training's linear layers use (``TrainingOptions/precision``).
public enum TrainingPrecision: String, Sendable, CaseIterable {
    case fp32
    /// The forward GEMMs and the input-gradient GEMMs with bf16 operands and fp32 sums (the scoring
    /// kernel's); the weight-gradient GEMMs, the optimizer, the master weights and every other op in fp32.
    /// Opt-in: its step losses leave the PyTorch golden tolerance (docs/performance.md, "bf16 training").
    /// Takes effect only where ``ScoringPrecision/isAvailable(_:)`` says bf16 runs; elsewhere fp32 trains.
    case bf16
}

/// One training step's weights packed for bf16: W for the forward GEMMs and Wᵀ for the input-gradient
/// GEMMs (dinp = dout · W). Kept by the model and repacked in place before every step, because the
/// weights change every step; the streams of a step only read it.
final class BF16TrainingWeights {
    /// A raw allocation, so the passes read it beside their float buffers without another closure.
    let storage: UnsafeMutablePointer<UInt16>
    /// Offsets into `storage` per layer (W, then Wᵀ) and of the LM head (tied to wte).
    private(set) var qkv: [(w: Int, wt: Int)] = [], attproj: [(w: Int, wt: Int)] = []
    private(set) var fc: [(w: Int, wt: Int)] = [], fcproj: [(w: Int, wt: Int)] = []
    private(set) var lmHead = (w: 0, wt: 0)
    private let config: ModelConfig

    init(_ config: ModelConfig) {
        self.config = config
        let L = config.layers, C = config.width
        var offset = 0
        func add(_ OC: Int, _ C: Int) -> (w: Int, wt: Int) {
            let w = offset
            offset += tov_bf16_packed_count(Int32(OC), Int32(C))
            let wt = offset
            offset += tov_bf16_packed_count(Int32(C), Int32(OC))
            return (w, wt)
        }
        for _ in 0..<L {
            qkv.append(add(3 * C, C))
            attproj.append(add(C, C))
            fc.append(add(4 * C, C))
            fcproj.append(add(C, 4 * C))
        }
        lmHead = add(config.vocabSize, C)
        storage = .allocate(capacity: offset)
    }

    deinit { storage.deallocate() }

    /// Packs every weight matrix of `p` (and its transpose), both cores sharing the tensors.
    func pack(_ p: ParameterViews) {
        let C = config.width
        var tensors: [(weight: UnsafeMutablePointer<Float>, OC: Int, C: Int, at: (w: Int, wt: Int))] = []
        for l in 0..<config.layers {
            tensors.append((p.qkvw(l), 3 * C, C, qkv[l]))
            tensors.append((p.attprojw(l), C, C, attproj[l]))
            tensors.append((p.fcw(l), 4 * C, C, fc[l]))
            tensors.append((p.fcprojw(l), C, 4 * C, fcproj[l]))
        }
        tensors.append((p.wte, config.vocabSize, C, lmHead))
        // Unchecked on purpose: job k writes only its own range of `storage` and reads the weights.
        nonisolated(unsafe) let base = storage
        nonisolated(unsafe) let jobs = tensors
        DispatchQueue.concurrentPerform(iterations: 2 * jobs.count) { index in
            let job = jobs[index / 2]
            if index % 2 == 0 {
                tov_bf16_pack(base + job.at.w, job.weight, Int32(job.OC), Int32(job.C))
            } else {
                tov_bf16_pack_transposed(base + job.at.wt, job.weight, Int32(job.C), Int32(job.OC))
            }
        }
    }
}

/// The bf16 kernel's input block, grown on demand: a raw allocation, so a pass can hold it beside its
/// float buffers without nesting another buffer-pointer closure. One per stream.
final class BF16Scratch {
    private(set) var pointer: UnsafeMutablePointer<UInt16>?
    private var count = 0

    /// Room for row blocks of up to `C` channels.
    func reserve(channels C: Int) -> UnsafeMutablePointer<UInt16> {
        let needed = tov_bf16_scratch_count(Int32(C))
        if let pointer, count >= needed { return pointer }
        pointer?.deallocate()
        pointer = .allocate(capacity: needed)
        count = needed
        return pointer!
    }

    deinit { pointer?.deallocate() }
}
