import Selection
import Surrogate

/// The ToV trajectories of DESIGN.md §4, one epoch at a time, so the daemon can store each checkpoint
/// as soon as it exists and `tovd evaluate` can score each epoch and let it go.
///
/// Method A: θ_bas^l = θ_bas^{l-1} + one epoch on U (LR η); θ_val^l = θ_bas^l + one pass on Z_val (LR ε).
/// Method B: θ_val^l = θ_val^{l-1} + one epoch on U, then one pass on Z_val; θ_bas is shared with A.
/// Both trajectories start from θ0's weights with fresh AdamW moments (``start(from:)``), so A and B
/// differ only by what the methods say, not by optimizer state carried over from pretraining; within a
/// trajectory the moments carry from epoch to epoch.
public struct Trajectory: Sendable {
    public var settings: TrajectorySettings
    /// Checked before every step: training returns early once it says true (the caller then stops).
    public var shouldStop: (@Sendable () -> Bool)?
    /// Every training step's progress, on the training thread (the daemon watches the loss for divergence).
    public var onStep: (@Sendable (TrainingProgress) -> Void)?

    public init(settings: TrajectorySettings, shouldStop: (@Sendable () -> Bool)? = nil,
                onStep: (@Sendable (TrainingProgress) -> Void)? = nil) {
        self.settings = settings
        self.shouldStop = shouldStop
        self.onStep = onStep
    }

    /// A trajectory's first model: θ0's weights, fresh optimizer state.
    public static func start(from theta0: Model) -> Model { theta0.copy() }

    /// The training encoding of rows: the whole prompt and response (training truncates to the context).
    public static func trainingExamples(_ rows: [RowText], tokenizer: Tokenizer) -> [Example] {
        rows.map { tokenizer.example(prompt: $0.prompt, response: $0.response) }
    }

    /// θ_bas^epoch: `model` holds θ_bas^{epoch−1} and is trained in place one epoch on U at η.
    public func trainBase(_ model: Model, epoch: Int, u: [Example]) {
        model.train(on: u, options: settings.baseEpoch(epoch, stop: shouldStop), progress: onStep)
    }

    /// θ_val^epoch, trained in place. Method A: `model` is a fresh copy of θ_bas^epoch (``start(from:)``);
    /// one pass on Z_val at ε. Method B: `model` is θ_val^{epoch−1} (θ0's start for epoch 1); one epoch on
    /// U at η in θ_bas's order, then one pass on Z_val.
    public func trainVal(_ model: Model, epoch: Int, method: TrajectoryMethod, u: [Example], zval: [Example]) {
        if method == .B { trainBase(model, epoch: epoch, u: u) }
        model.train(on: zval, options: settings.valPass(epoch, stop: shouldStop), progress: onStep)
    }
}
