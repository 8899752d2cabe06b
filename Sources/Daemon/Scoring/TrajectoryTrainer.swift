import Foundation
import Logging
import Selection
import Surrogate
import ToVPipeline
import Synchronization

/// Runs the pipeline's trajectories (ToVPipeline: ``Theta0``, ``Trajectory``) for the leader and
/// hands each checkpoint to `store` as soon as it exists, so a crash loses at most one epoch of work
/// and workers can load checkpoints from the DB. The training itself is the pipeline's, the same code
/// `tovd evaluate` runs; this type only moves models through checkpoints, off the cooperative pool,
/// and reports progress, stops and divergence.
struct TrajectoryTrainer: Sendable {
    let config: BaseModelConfig
    let logger: Logger
    /// This host's training arithmetic (`tovd run --training-precision`, resolved): not part of the
    /// base model's settings, like the scoring precision.
    var precision: TrainingPrecision = .fp32
    /// Set on shutdown or lost leadership: training stops at the next step and the trainer throws
    /// CancellationError.
    var shouldStop: @Sendable () -> Bool = { false }
    /// Called from the training thread with (phase, done, total) as steps complete; the trainer
    /// service turns it into tov.leader_activity.
    var progress: @Sendable (_ phase: TrainingPhase, _ done: Int, _ total: Int) -> Void = { _, _, _ in }
    /// The last training loss seen; a non-finite one means the run diverged.
    let lastLoss = LossBox()

    func checkStop() throws {
        if shouldStop() { throw CancellationError() }
    }

    /// The surrogate's shape, validated: a shape the CHECK let through but the model cannot take
    /// (an older schema, a bypassed CHECK) is an error the trainer reports, never a trap.
    func modelConfig() throws -> ModelConfig {
        do {
            return try ModelConfig.validated(layers: config.surrogate.layers, width: config.surrogate.width, heads: config.surrogate.heads,
                                             context: config.surrogate.context, vocabSize: config.surrogate.vocab)
        } catch {
            throw DaemonError(.config, "setting surrogate cannot be used: \(error)")
        }
    }

    /// The pipeline's settings for this base model, trained in this host's precision.
    var settings: TrajectorySettings {
        var settings = config.trajectory
        settings.trainingPrecision = precision
        return settings
    }

    /// The pipeline's trajectory under this base model's settings, wired to stop and loss tracking.
    var trajectory: Trajectory {
        let lastLoss = self.lastLoss
        return Trajectory(settings: settings, shouldStop: shouldStop) { lastLoss.set($0.loss) }
    }

    /// θ0 and θ_bas^1..L. `u` is U in candidate id order. θ0 is `imported` (its own tokenizer, stored
    /// as the base model's θ0 byte for byte, so its SHA-256 is the import's) or, without one, the
    /// pipeline's bootstrap on U.
    func trainBase(u: [RowText], imported: SurrogateCheckpoint.Stored? = nil,
                   store: @escaping @Sendable (_ kind: String, _ epoch: Int, _ checkpoint: [UInt8]) async throws -> Void) async throws {
        let config = self.config
        let settings = self.settings
        let modelConfig = try self.modelConfig()
        let logger = self.logger
        let shouldStop = self.shouldStop
        let theta0: Theta0
        if let imported {
            theta0 = Theta0(tokenizer: imported.checkpoint.tokenizer, model: imported.checkpoint.model)
            try await store("theta0", 0, imported.bytes)
        } else {
            theta0 = try await runOffPool(name: "tovd-pretrain") { () -> Lent<Theta0> in
                Lent(Theta0.bootstrap(u: u, config: modelConfig, settings: settings, shouldStop: shouldStop) { progress in
                    self.lastLoss.set(progress.loss)
                    self.progress(.pretraining, progress.step, progress.totalSteps)
                    if progress.step % 50 == 0 {
                        logger.info("pretraining θ0", metadata: ["step": "\(progress.step)", "of": "\(progress.totalSteps)", "loss": "\(progress.loss)"])
                    }
                })
            }.value
            try checkStop()
            try lastLoss.checkFinite("pretraining θ0")
            try await store("theta0", 0, SurrogateCheckpoint.encode(model: theta0.model, tokenizer: theta0.tokenizer, metadata: ["kind": "theta0"]))
        }
        let tokenizer = theta0.tokenizer

        let examples = Trajectory.trainingExamples(u, tokenizer: tokenizer)
        let trajectory = self.trajectory
        // θ_bas starts from θ0 with fresh optimizer moments (the pipeline's rule), like the θ0 a
        // refresh decodes for Method B.
        let model = Trajectory.start(from: theta0.model)
        for epoch in 1...config.epochs {
            progress(.baseTrajectory, epoch - 1, config.epochs)
            let lent = Lent(model)
            try await runOffPool(name: "tovd-train-base") { trajectory.trainBase(lent.value, epoch: epoch, u: examples) }
            try checkStop()
            try lastLoss.checkFinite("base epoch \(epoch)")
            progress(.baseTrajectory, epoch, config.epochs)
            try await store("base", epoch, SurrogateCheckpoint.encode(model: model, tokenizer: tokenizer, metadata: ["kind": "base", "epoch": "\(epoch)"]))
            logger.info("base epoch trained", metadata: ["epoch": "\(epoch)", "of": "\(config.epochs)"])
        }
    }

    /// θ_val^1..L for the given Z_val, from the stored θ0 and θ_bas^1..L (the weights the pipeline
    /// trained; a checkpoint holds them exactly).
    func trainVal(theta0: [UInt8], base: [[UInt8]], zval: [RowText], u: [RowText], method: TrajectoryMethod,
                  store: @escaping @Sendable (_ epoch: Int, _ checkpoint: [UInt8]) async throws -> Void) async throws {
        let config = self.config
        let trajectory = self.trajectory
        var carried: SurrogateCheckpoint?   // Method B's own trajectory, starting at θ0
        for epoch in 1...config.epochs {
            progress(.valTrajectory, epoch - 1, config.epochs)
            // A decoded checkpoint is a fresh start (its weights, no optimizer state), as
            // ``Trajectory/start(from:)`` makes one in memory.
            let start: SurrogateCheckpoint
            switch method {
            case .A: start = try SurrogateCheckpoint.decode(base[epoch - 1])
            case .B: start = try carried ?? SurrogateCheckpoint.decode(theta0)
            }
            let model = start.model
            let tokenizer = start.tokenizer
            let zvalExamples = Trajectory.trainingExamples(zval, tokenizer: tokenizer)
            let uExamples = method == .B ? Trajectory.trainingExamples(u, tokenizer: tokenizer) : []
            let lent = Lent(model)
            try await runOffPool(name: "tovd-train-val") {
                trajectory.trainVal(lent.value, epoch: epoch, method: method, u: uExamples, zval: zvalExamples)
            }
            try checkStop()
            try lastLoss.checkFinite("θ_val epoch \(epoch)")
            progress(.valTrajectory, epoch, config.epochs)
            if method == .B { carried = start }
            try await store(epoch, SurrogateCheckpoint.encode(model: model, tokenizer: tokenizer, metadata: ["kind": "val", "epoch": "\(epoch)"]))
        }
    }
}

extension TrajectoryTrainer {
    /// The Z_val signal of a version (``ZvalAgreement``): Z_val's halves nudge θ_bas^L (`lastBase`, as
    /// stored) and score `sample` in the workers' `precision`, the pipeline's code off the cooperative pool. Nil when Z_val or the
    /// sample is too small for a number.
    func zvalAgreement(lastBase: [UInt8], zval: [RowText], u: [RowText], sample: [RowText],
                       precision: ScoringPrecision) async throws -> ZvalAgreement? {
        let trajectory = self.trajectory
        let result = try await runOffPool(name: "tovd-zval-agreement") { () -> ZvalAgreement? in
            let base = try SurrogateCheckpoint.decode(lastBase)
            return ZvalAgreement.measure(base: base.model, tokenizer: base.tokenizer, zval: zval, u: u, sample: sample,
                                         trajectory: trajectory, scoring: Model.ScoringOptions(precision: precision))
        }
        try checkStop()
        return result
    }
}

extension SurrogateCheckpoint {
    /// A checkpoint decoded from stored bytes, with the bytes (an imported θ0 is stored again as is).
    struct Stored: @unchecked Sendable {
        // @unchecked: the model is handed from the task that decoded it to the trainer, never shared.
        var checkpoint: SurrogateCheckpoint
        var bytes: [UInt8]
    }
}

/// The phases a trainer reports progress for.
enum TrainingPhase: String, Sendable {
    case pretraining = "pretraining θ0"
    case baseTrajectory = "base trajectory"
    case valTrajectory = "θ_val"
}

/// The last loss a training thread reported, read by the async side.
final class LossBox: Sendable {
    private let value = Mutex<Float>(0)
    func set(_ loss: Float) { value.withLock { $0 = loss } }

    /// Throws when training diverged: the checkpoints would score every row NaN.
    func checkFinite(_ what: String) throws {
        let loss = value.withLock { $0 }
        guard loss.isFinite else {
            throw DaemonError(.model, "training diverged during \(what) (loss \(loss)); lower `lr` or `val_lr_ratio` in tov.settings")
        }
    }
}
