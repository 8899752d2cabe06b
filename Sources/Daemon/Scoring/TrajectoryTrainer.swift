import Foundation
import Logging
import Selection
import Surrogate

/// Trains the ToV trajectories of DESIGN.md §4 and hands each checkpoint to `store` as soon as it
/// exists, so a crash loses at most one epoch of work and workers can load checkpoints from the DB.
///
/// Method A: θ_bas^l = θ_bas^{l-1} + one epoch on U (LR η); θ_val^l = θ_bas^l + one pass on Z_val (LR ε).
/// Method B: θ_val^l = θ_val^{l-1} + one epoch on U, then one pass on Z_val; θ_bas is shared with A.
struct TrajectoryTrainer: Sendable {
    let config: BaseModelConfig
    let logger: Logger
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

    /// θ0 (tokenizer learned on U, next-token pretraining on U's de-duplicated text) and θ_bas^1..L.
    func trainBase(u: [RowText], store: @escaping @Sendable (_ kind: String, _ epoch: Int, _ checkpoint: [UInt8]) async throws -> Void) async throws {
        let config = self.config
        let modelConfig = try self.modelConfig()
        let logger = self.logger
        let shouldStop = self.shouldStop
        let (tokenizer, theta0) = try await runOffPool(name: "tovd-pretrain") { () -> (Tokenizer, Model) in
            let rows = u.map { ($0.source, $0.prompt, $0.response) }
            let tokenizer = BootstrapPretraining.tokenizer(rows, vocabSize: modelConfig.vocabSize)
            let model = Model(config: modelConfig, seed: UInt64(bitPattern: config.seed))
            let pretraining = config.bootstrapPretraining
            let documents = pretraining.documents(rows, tokenizer: tokenizer, context: modelConfig.context)
            pretraining.train(model, on: documents, shouldStop: shouldStop) { progress in
                self.lastLoss.set(progress.loss)
                self.progress(.pretraining, progress.step, progress.totalSteps)
                if progress.step % 50 == 0 {
                    logger.info("pretraining θ0", metadata: ["step": "\(progress.step)", "of": "\(progress.totalSteps)", "loss": "\(progress.loss)"])
                }
            }
            return (tokenizer, model)
        }
        try checkStop()
        try lastLoss.checkFinite("pretraining θ0")
        let theta0Bytes = SurrogateCheckpoint.encode(model: theta0, tokenizer: tokenizer, metadata: ["kind": "theta0"])
        try await store("theta0", 0, theta0Bytes)

        let examples = u.map { tokenizer.example(prompt: $0.prompt, response: $0.response) }
        // θ_bas starts from θ0 as stored, with fresh optimizer moments, exactly as Method B's θ_val
        // does: the two trajectories then differ only by what the methods say, not by AdamW state
        // carried over from pretraining.
        let model = try SurrogateCheckpoint.decode(theta0Bytes).model
        for epoch in 1...config.epochs {
            progress(.baseTrajectory, epoch - 1, config.epochs)
            try await runOffPool(name: "tovd-train-base") {
                model.train(on: examples, options: Self.oneEpoch(lr: config.learningRate, seed: config.seed, epoch: epoch, stop: shouldStop)) {
                    self.lastLoss.set($0.loss)
                }
            }
            try checkStop()
            try lastLoss.checkFinite("base epoch \(epoch)")
            progress(.baseTrajectory, epoch, config.epochs)
            try await store("base", epoch, SurrogateCheckpoint.encode(model: model, tokenizer: tokenizer, metadata: ["kind": "base", "epoch": "\(epoch)"]))
            logger.info("base epoch trained", metadata: ["epoch": "\(epoch)", "of": "\(config.epochs)"])
        }
    }

    /// θ_val^1..L for the given Z_val.
    func trainVal(theta0: [UInt8], base: [[UInt8]], zval: [RowText], u: [RowText], method: TrajectoryMethod,
                  store: @escaping @Sendable (_ epoch: Int, _ checkpoint: [UInt8]) async throws -> Void) async throws {
        let config = self.config
        let shouldStop = self.shouldStop
        let valLR = config.learningRate * config.valLearningRateRatio
        var carried: SurrogateCheckpoint?   // Method B's own trajectory, starting at θ0
        for epoch in 1...config.epochs {
            progress(.valTrajectory, epoch - 1, config.epochs)
            let start: SurrogateCheckpoint
            switch method {
            case .A: start = try SurrogateCheckpoint.decode(base[epoch - 1])
            case .B: start = try carried ?? SurrogateCheckpoint.decode(theta0)
            }
            let model = start.model
            let tokenizer = start.tokenizer
            let zvalExamples = zval.map { tokenizer.example(prompt: $0.prompt, response: $0.response) }
            let uExamples = method == .B ? u.map { tokenizer.example(prompt: $0.prompt, response: $0.response) } : []
            try await runOffPool(name: "tovd-train-val") {
                if method == .B {
                    model.train(on: uExamples, options: Self.oneEpoch(lr: config.learningRate, seed: config.seed, epoch: epoch, stop: shouldStop)) {
                        self.lastLoss.set($0.loss)
                    }
                }
                model.train(on: zvalExamples, options: Self.oneEpoch(lr: valLR, seed: config.seed, epoch: 1000 + epoch, stop: shouldStop)) {
                    self.lastLoss.set($0.loss)
                }
            }
            try checkStop()
            try lastLoss.checkFinite("θ_val epoch \(epoch)")
            progress(.valTrajectory, epoch, config.epochs)
            if method == .B { carried = start }
            try await store(epoch, SurrogateCheckpoint.encode(model: model, tokenizer: tokenizer, metadata: ["kind": "val", "epoch": "\(epoch)"]))
        }
    }

    /// One pass at a constant learning rate: trajectories are sequences of single epochs.
    static func oneEpoch(lr: Double, seed: Int64, epoch: Int, stop: @escaping @Sendable () -> Bool) -> TrainingOptions {
        var options = TrainingOptions()
        options.shouldStop = stop
        options.epochs = 1
        options.learningRate = Float(lr)
        options.schedule = .constant
        options.warmupSteps = 0
        options.seed = UInt64(bitPattern: seed) &+ UInt64(epoch)
        return options
    }
}

/// The phases a trainer reports progress for.
enum TrainingPhase: String, Sendable {
    case pretraining = "pretraining θ0"
    case baseTrajectory = "base trajectory"
    case valTrajectory = "θ_val"
}

/// The last loss a training thread reported, read by the async side.
final class LossBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Float = 0
    func set(_ loss: Float) { lock.withLock { value = loss } }

    /// Throws when training diverged: the checkpoints would score every row NaN.
    func checkFinite(_ what: String) throws {
        let loss = lock.withLock { value }
        guard loss.isFinite else {
            throw DaemonError(.model, "training diverged during \(what) (loss \(loss)); lower `lr` or `val_lr_ratio` in tov.settings")
        }
    }
}
