@testable import Daemon
import Testing

/// The trainer's pure decisions: which settings rebase, when pool growth does, and when the host
/// cannot train a surrogate at all.
@Suite("Trainer decisions")
struct TrainerDecisionTests {
    static func stored(_ settings: Settings) -> BaseModelConfig { BaseModelConfig(settings: settings) }

    @Test func onlyBaseShapingSettingsRebase() {
        let settings = Settings()
        let base = Self.stored(settings)
        #expect(TrainerPolicy.rebaseReason(stored: base, storedUSize: settings.uSize, poolAtDraw: 10_000, ready: 10_000,
                                     settings: settings, requested: false) == nil)
        var changed = settings
        changed.surrogate.width = 128
        #expect(TrainerPolicy.rebaseReason(stored: base, storedUSize: settings.uSize, poolAtDraw: 10_000, ready: 10_000,
                                     settings: changed, requested: false) == "surrogate changed")
        changed = settings
        changed.uSize = 1000
        changed.learningRate = 1e-3
        #expect(TrainerPolicy.rebaseReason(stored: base, storedUSize: settings.uSize, poolAtDraw: 10_000, ready: 10_000,
                                     settings: changed, requested: false) == "u_size, lr changed")
        // Refresh- and live-class settings never rebase.
        changed = settings
        changed.valLearningRateRatio = 0.5
        changed.selection.method = .B
        changed.selection.policy = .random
        changed.maxAttempts = 7
        #expect(TrainerPolicy.rebaseReason(stored: base, storedUSize: settings.uSize, poolAtDraw: 10_000, ready: 10_000,
                                     settings: changed, requested: false) == nil)
        #expect(TrainerPolicy.rebaseReason(stored: base, storedUSize: settings.uSize, poolAtDraw: 10_000, ready: 10_000,
                                     settings: settings, requested: true) == "tovd rebase")
    }

    @Test func poolGrowthRebasesPastTheFactorOnly() {
        var settings = Settings()
        settings.rebaseGrowth = 4
        let base = Self.stored(settings)
        let reason = { (ready: Int) in
            TrainerPolicy.rebaseReason(stored: base, storedUSize: settings.uSize, poolAtDraw: 5_000, ready: ready, settings: settings, requested: false)
        }
        #expect(reason(19_999) == nil)
        #expect(reason(20_000)?.hasPrefix("pool grew from 5000 to 20000 rows") == true)
        settings.rebaseGrowth = 0
        #expect(TrainerPolicy.rebaseReason(stored: base, storedUSize: settings.uSize, poolAtDraw: 5_000, ready: 1_000_000,
                                     settings: settings, requested: false) == nil)
    }

    @Test func surrogatesTooLargeForTheHostAreRefusedWithAReason() {
        var settings = Settings()
        #expect(BaseModelConfig(settings: settings).memoryProblem(physicalMemory: 24 << 30) == nil)
        settings.surrogate = .init(layers: 48, width: 4096, heads: 64, context: 8192, vocab: 65536)
        let problem = BaseModelConfig(settings: settings).memoryProblem(physicalMemory: 24 << 30)
        #expect(problem?.contains("choose a smaller surrogate") == true, "\(problem ?? "nil")")
    }

    @Test func uIsDrawnOnlyOnceTheBacklogIsSmall() {
        #expect(TrainerPolicy.backlogAllowsSamplingU(ready: 950, validating: 50))
        #expect(!TrainerPolicy.backlogAllowsSamplingU(ready: 900, validating: 100))
        var settings = Settings()
        settings.uSize = 100
        #expect(TrainerPolicy.waitForPool(ready: 99, validating: 0, settings: settings) != nil)
        #expect(TrainerPolicy.waitForPool(ready: 100, validating: 0, settings: settings) == nil)
    }
}
