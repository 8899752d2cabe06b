import Daemon
import Surrogate
import Testing

/// `--scoring-precision`: auto follows the CPU silently, an explicit choice is honoured where it can be
/// and reported where it cannot.
@Suite struct PrecisionChoiceTests {
    @Test func autoScoresInBF16OnlyWhereTheCPUHasIt() {
        #expect(PrecisionChoice.auto.resolve(bf16Available: true) == (.bf16, nil))
        #expect(PrecisionChoice.auto.resolve(bf16Available: false) == (.fp32, nil))
    }

    @Test func fp32IsAlwaysHonoured() {
        #expect(PrecisionChoice.fp32.resolve(bf16Available: true) == (.fp32, nil))
        #expect(PrecisionChoice.fp32.resolve(bf16Available: false) == (.fp32, nil))
    }

    @Test func bf16WithoutTheCPUFallsBackToFP32WithAWarning() {
        #expect(PrecisionChoice.bf16.resolve(bf16Available: true) == (.bf16, nil))
        let (precision, warning) = PrecisionChoice.bf16.resolve(bf16Available: false)
        #expect(precision == .fp32)
        #expect(warning?.contains("AVX-512 BF16") == true)
    }

    /// `--training-precision`: fp32 always, bf16 where the CPU has it, else fp32 with a warning.
    @Test func trainingPrecisionFallsBackToFP32WithAWarning() {
        #expect(TrainingPrecision.fp32.resolve(bf16Available: false) == (.fp32, nil))
        #expect(TrainingPrecision.bf16.resolve(bf16Available: true) == (.bf16, nil))
        let (precision, warning) = TrainingPrecision.bf16.resolve(bf16Available: false)
        #expect(precision == .fp32)
        #expect(warning?.contains("AVX-512 BF16") == true)
    }

    /// The daemon's default and the evaluation's are one fact: what `preferred` says for this CPU.
    @Test func theDefaultIsThePreferredPrecisionOfThisCPU() {
        #expect(PrecisionChoice.auto.resolve(bf16Available: ScoringPrecision.isAvailable(.bf16)).precision == ScoringPrecision.preferred)
    }
}
