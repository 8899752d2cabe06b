import Foundation
import Selection
import Surrogate
import ToVPipeline

/// The checkpoints of one live model version, loaded: θ_bas^1..L (shared by every version of the
/// same base model) and θ_val^1..L. Computes the losses a worker writes to `tov.base_losses` and
/// `tov.scores`, with the pipeline's per-row scoring (``RowScoring``). Not thread-safe (models own
/// activation buffers): each worker has its own.
public final class LoadedVersion: @unchecked Sendable {
    // @unchecked: its models are scored by one worker at a time (each worker has its own ModelCache).
    public let modelVersion: Int
    public let baseVersion: Int
    public let tokenizer: Tokenizer
    let base: [Model]
    let val: [Model]
    /// The target's n-gram model of this version (score_dsir's weights); nil for a version made
    /// before the schema kept one, whose rows then weigh 0.
    let importanceModel: NgramImportance?
    /// The rows of the last call and their tokens: a worker calls `baseLosses` and then `valLosses`
    /// on the same batch, and tokenizing once serves all 2L checkpoints.
    private var lastRows: [RowText] = []
    private var lastExamples: [Example] = []

    convenience init(modelVersion: Int, baseVersion: Int, base: [SurrogateCheckpoint], val: [SurrogateCheckpoint],
                     importanceModel: NgramImportance?) throws {
        guard let tokenizer = base.first?.tokenizer else {
            throw DaemonError(.checkpoint, "model version \(modelVersion) has no θ_bas checkpoint")
        }
        try self.init(modelVersion: modelVersion, baseVersion: baseVersion, tokenizer: tokenizer, base: base.map(\.model), val: val.map(\.model),
                      importanceModel: importanceModel)
    }

    /// For benchmarks: models already in memory.
    public init(modelVersion: Int, baseVersion: Int, tokenizer: Tokenizer, base: [Model], val: [Model],
                importanceModel: NgramImportance? = nil) throws {
        guard base.count == val.count, !base.isEmpty else {
            throw DaemonError(.checkpoint, "model version \(modelVersion) needs as many θ_val as θ_bas checkpoints (got \(base.count) and \(val.count))")
        }
        self.modelVersion = modelVersion
        self.baseVersion = baseVersion
        self.tokenizer = tokenizer
        self.base = base
        self.val = val
        self.importanceModel = importanceModel
    }

    /// The row's n-gram log importance weight for this version's target (0 without a model).
    func importance(_ row: RowText) -> Double {
        importanceModel?.logWeight(row) ?? 0
    }

    public var epochs: Int { base.count }

    func examples(_ rows: [RowText]) -> [Example] {
        if rows != lastRows {
            lastExamples = RowScoring.examples(rows, tokenizer: tokenizer, context: base[0].config.context)
            lastRows = rows
        }
        return lastExamples
    }

    /// ℓ(θ_bas^l, x) for l = 1...L, ψ under θ_bas^L, and the response tokens averaged over.
    public func baseLosses(_ rows: [RowText], options: Model.ScoringOptions = .init()) throws -> [BaseLossRecord] {
        RowScoring.baseLosses(examples(rows), base: base, options: options)
    }

    /// ℓ(θ_val^l, x) for l = 1...L.
    public func valLosses(_ rows: [RowText], options: Model.ScoringOptions = .init()) throws -> [[Float]] {
        RowScoring.valLosses(examples(rows), val: val, options: options)
    }
}
