import Foundation
import Surrogate
import ToVPipeline

/// What a base model was trained with, stored as `tov.base_models.config` so a refresh and every
/// worker use exactly the trajectory's own settings, whatever `tov.settings` says later.
public struct BaseModelConfig: Codable, Sendable, Equatable {
    public var surrogate: Settings.SurrogateShape
    public var epochs: Int
    public var learningRate: Double
    public var valLearningRateRatio: Double
    public var pretrainSteps: Int
    public var seed: Int64
    /// The imported θ0 the base model started from (tov.theta0s), nil for the bootstrap. Optional
    /// and left out of the JSON when nil (synthesized Codable uses decodeIfPresent/encodeIfPresent):
    /// configs stored before schema version 9 decode as bootstrap ones, and a bootstrap config's JSON
    /// is unchanged, so `config = $1::jsonb` still finds the diverged bases stored before.
    public var theta0: String?

    enum CodingKeys: String, CodingKey {
        case surrogate, epochs, learningRate = "lr", valLearningRateRatio = "val_lr_ratio"
        case pretrainSteps = "pretrain_steps", seed, theta0
    }

    public init(settings: Settings) {
        surrogate = settings.surrogate
        epochs = settings.epochs
        learningRate = settings.learningRate
        valLearningRateRatio = settings.valLearningRateRatio
        pretrainSteps = settings.pretrainSteps
        seed = Int64(settings.selection.seed)
        theta0 = settings.theta0
    }

    public init(json: String) throws {
        self = try JSONDecoder().decode(BaseModelConfig.self, from: Data(json.utf8))
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// The pipeline's settings for this base model (ε from `valLearningRateRatio`).
    public var trajectory: TrajectorySettings {
        TrajectorySettings(epochs: epochs, learningRate: learningRate, valLearningRateRatio: valLearningRateRatio,
                           pretrainSteps: pretrainSteps, seed: seed)
    }

    /// θ0's pretraining on U, as the pipeline defines it (``TrajectorySettings/bootstrapPretraining``).
    public var bootstrapPretraining: BootstrapPretraining { trajectory.bootstrapPretraining }

    /// ε/η may change between refreshes without retraining the base trajectory.
    public func with(valLearningRateRatio ratio: Double) -> BaseModelConfig {
        var copy = self
        copy.valLearningRateRatio = ratio
        return copy
    }
}
