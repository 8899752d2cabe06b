import CKernels

// The bf16 scoring path's linear layers (Sources/CKernels/bf16.c): weights packed to bf16 once per
// model, inputs rounded per call, products and sums in fp32 (AVX-512 BF16's VDPBF16PS). Used only by
// the scoring pass and only where the CPU reports avx512_bf16 (there it is the daemon's and the
// evaluation's default, ``ScoringPrecision/preferred``); training stays fp32.

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
