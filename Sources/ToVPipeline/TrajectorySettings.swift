import Surrogate

/// Everything besides the data and the surrogate's shape that shapes θ0 and the trajectories of
/// DESIGN.md §4. The daemon stores them per base model (`tov.base_models.config`); `tovd evaluate`
/// sets them from its options.
public struct TrajectorySettings: Sendable, Equatable {
    /// L, the number of scoring epochs.
    public var epochs: Int
    /// η, the learning rate of the base trajectory on U.
    public var learningRate: Double
    /// ε / η: the pass on Z_val runs at ε = this · η.
    public var valLearningRateRatio: Double
    /// Steps of θ0's bootstrap pretraining on U (when θ0 is not given).
    public var pretrainSteps: Int
    /// Seeds θ0's initialisation and pretraining, U's draw and every epoch's data order.
    public var seed: Int64
    /// The arithmetic of θ0's bootstrap pretraining and of every trajectory pass: fp32 unless a host
    /// runs `tovd run --training-precision bf16` (a host's choice, not a base model's setting, so the
    /// daemon's trainer sets it and BaseModelConfig leaves it out). `tovd evaluate` trains in fp32.
    public var trainingPrecision: TrainingPrecision = .fp32

    public init(epochs: Int, learningRate: Double, valLearningRateRatio: Double, pretrainSteps: Int, seed: Int64) {
        self.epochs = epochs
        self.learningRate = learningRate
        self.valLearningRateRatio = valLearningRateRatio
        self.pretrainSteps = pretrainSteps
        self.seed = seed
    }

    /// The daemon's defaults (`tov.settings` of a fresh database; ToVPipelineTests checks them against
    /// `Settings()`), for callers that evaluate what a default daemon does.
    public static let daemonDefaults = TrajectorySettings(epochs: 2, learningRate: 3e-4, valLearningRateRatio: 0.1, pretrainSteps: 200, seed: 0)

    /// ε.
    public var valLearningRate: Double { learningRate * valLearningRateRatio }

    /// θ0's bootstrap pretraining on U: peak LR 3η, warmup + cosine over `pretrainSteps`.
    public var bootstrapPretraining: BootstrapPretraining {
        BootstrapPretraining(steps: pretrainSteps, learningRate: Float(learningRate * 3), seed: UInt64(bitPattern: seed),
                             precision: trainingPrecision)
    }

    /// Epoch `epoch` (1...L) of θ_bas on U, and of Method B's θ_val on U: one pass at constant η, the
    /// data order seeded by seed + epoch (so Method B's θ_val sees U in θ_bas's order).
    public func baseEpoch(_ epoch: Int, stop: (@Sendable () -> Bool)? = nil) -> TrainingOptions {
        onePass(lr: learningRate, seed: UInt64(bitPattern: seed) &+ UInt64(epoch), stop: stop)
    }

    /// The pass of θ_val^epoch on Z_val: constant ε, order seeded by seed + 1000 + epoch.
    public func valPass(_ epoch: Int, stop: (@Sendable () -> Bool)? = nil) -> TrainingOptions {
        onePass(lr: valLearningRate, seed: UInt64(bitPattern: seed) &+ UInt64(1000 + epoch), stop: stop)
    }

    /// Cross-fitted ToV's pass of θ_bas^L over Z_val without fold `fold` (``CrossFittedToV``): constant
    /// η, as the user's own training on Z_val; order seeded by seed + 2000 + fold.
    public func crossFitPass(_ fold: Int, stop: (@Sendable () -> Bool)? = nil) -> TrainingOptions {
        onePass(lr: learningRate, seed: UInt64(bitPattern: seed) &+ UInt64(2000 + fold), stop: stop)
    }

    /// One pass at a constant learning rate: trajectories are sequences of single epochs.
    func onePass(lr: Double, seed: UInt64, stop: (@Sendable () -> Bool)?) -> TrainingOptions {
        var options = TrainingOptions()
        options.precision = trainingPrecision
        options.shouldStop = stop
        options.epochs = 1
        options.learningRate = Float(lr)
        options.schedule = .constant
        options.warmupSteps = 0
        options.seed = seed
        return options
    }
}
