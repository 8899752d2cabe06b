import Surrogate

/// `--scoring-precision` as an operator gives it. `auto` (the default) scores in bf16 where the CPU
/// has AVX-512 BF16 and in fp32 elsewhere, without a warning: the same rows rank the same either way
/// (docs/performance.md, "bf16 scoring"). An explicit `bf16` on a CPU without it is a request the host
/// cannot honour: the daemon says so and scores in fp32 rather than refusing to start.
public enum PrecisionChoice: String, Sendable, CaseIterable {
    case auto, fp32, bf16

    /// The precision to score with on a CPU that has (or lacks) bf16, and a warning when the choice
    /// could not be honoured.
    public func resolve(bf16Available: Bool) -> (precision: ScoringPrecision, warning: String?) {
        switch self {
        case .fp32: return (.fp32, nil)
        case .auto: return (bf16Available ? .bf16 : .fp32, nil)
        case .bf16:
            guard bf16Available else {
                return (.fp32, "bf16 scoring needs AVX-512 BF16, which this CPU does not report (/proc/cpuinfo avx512_bf16): scoring in fp32; --scoring-precision auto picks fp32 here without this warning")
            }
            return (.bf16, nil)
        }
    }
}

extension TrainingPrecision {
    /// `--training-precision` on a CPU that has (or lacks) bf16: an explicit bf16 the host cannot run
    /// trains in fp32 with a warning, as `--scoring-precision bf16` scores in fp32. There is no auto:
    /// bf16 training leaves PyTorch's golden tolerance, so it is never chosen for the operator.
    public func resolve(bf16Available: Bool) -> (precision: TrainingPrecision, warning: String?) {
        guard self == .bf16, !bf16Available else { return (self, nil) }
        return (.fp32, "bf16 training needs AVX-512 BF16, which this CPU does not report (/proc/cpuinfo avx512_bf16): training in fp32")
    }
}
