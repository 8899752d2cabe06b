import Foundation
import Selection
import Surrogate

/// The whole ToV pipeline in memory, from rows to scores: U's draw, θ0, the trajectories, every row
/// outside U scored, and the selection. `tovd evaluate` runs it on its pool; the daemon runs the same
/// steps (``UDraw``, ``Theta0``, ``Trajectory``, ``RowScoring``) spread over its services, with the pool
/// and the selection in PostgreSQL, and `OnePipelineTests` holds the two to the same φ and selection.
public struct PipelineRun {
    /// The surrogate's shape for a bootstrap θ0 (a given θ0 brings its own).
    public var model: ModelConfig
    public var settings: TrajectorySettings
    /// |U|.
    public var uSize: Int
    public var method: TrajectoryMethod
    public var scoreFunction: ScoreFunction
    /// The daemon's default arithmetic (bf16 where the CPU has it), so an evaluation measures what ships.
    public var scoring = Model.ScoringOptions(precision: .preferred)
    /// (stage, done, total): bootstrap pretraining in steps, scoring in rows (per chunk of
    /// ``RowScoring/chunkRows``).
    public var progress: ((_ stage: Stage, _ done: Int, _ total: Int) -> Void)?
    /// Also score every row by cross-fitted ToV with each of these numbers of folds (``CrossFittedToV``),
    /// from the same θ_bas^L; empty: plain ToV only.
    public var crossFitFolds: [Int] = []

    public enum Stage: String, Sendable {
        case pretraining = "bootstrap θ0"
        case scoring = "ToV scoring"
        case crossFitting = "cross-fitted ToV scoring"
    }

    public init(model: ModelConfig, settings: TrajectorySettings, uSize: Int, method: TrajectoryMethod, scoreFunction: ScoreFunction) {
        self.model = model
        self.settings = settings
        self.uSize = uSize
        self.method = method
        self.scoreFunction = scoreFunction
    }

    /// One target's part of a run: its θ_val losses and the φ they give.
    public struct TargetScores {
        /// φ, ψ, length and n-gram importance (Z_val's words against U's) of every pool row outside U,
        /// in pool order.
        public var rows: [ScoredRow]
        /// ℓ(θ_val^l, x) per scored row (what the daemon stores per target in tov.scores).
        public var valLosses: [[Float]]
        /// Whether this target's Z_val agrees with itself (``ZvalAgreement``, what `tovd status` shows):
        /// nil when Z_val or the pool is too small for it.
        public var agreement: ZvalAgreement?
        /// By number of folds, the rows of ``rows`` scored by cross-fitted ToV (φ over folds; ψ and length
        /// under the last fold's model), for each of ``PipelineRun/crossFitFolds`` when Z_val has two
        /// contexts or more.
        public var crossFitted: [Int: [ScoredRow]] = [:]
    }

    public struct Result {
        /// U's ids, ascending.
        public var u: [Int64]
        public var theta0: Theta0
        /// The base losses behind every target's rows, computed once (what the daemon stores in tov.base_losses).
        public var baseLosses: [BaseLossRecord]
        /// Per target, in the order of the Z_vals given.
        public var targets: [TargetScores]
        /// θ_bas^L.
        public var finalBase: Model
        /// Wall time of θ0's bootstrap pretraining (0 for a given θ0), of the base trajectory, and of
        /// cross-fitted ToV's folds (training and passes, every target).
        public var theta0Seconds: Double
        public var baseTrainingSeconds: Double
        public var crossFitSeconds: Double
        /// Forward passes over the scored rows: L under θ_bas, shared, and L under each target's θ_val.
        public var scoringPasses: Int

        /// The first (for ``PipelineRun/run(pool:zval:theta0:)``: the only) target's scores.
        public var rows: [ScoredRow] { targets[0].rows }
        public var valLosses: [[Float]] { targets[0].valLosses }

        /// The selection under `settings`: the daemon's policies, as ``Selection/select(_:settings:)``
        /// defines them and the daemon's SQL computes them.
        public func select(_ settings: SelectionSettings) -> SelectionResult {
            Selection.select(rows, settings: settings)
        }
    }

    /// Runs the pipeline for one target. Row ids must be unique within `pool`; `zval` is used in the
    /// order given (the daemon's: `tov.validation` by id, rejected rows left out).
    public func run(pool: [RowText], zval: [RowText], theta0 choice: Theta0.Choice) -> Result {
        run(pool: pool, zvals: [zval], theta0: choice)
    }

    /// Runs the pipeline for several targets on one pool, as the daemon serves them: one U, θ0 and base
    /// trajectory, each row's base losses once; per target its own θ_val trajectory and L passes. A
    /// target's scores depend only on the shared part and its own Z_val, so they are the scores a run
    /// for that target alone gives (`SharedScoringCheck` measures it on real data).
    public func run(pool: [RowText], zvals: [[RowText]], theta0 choice: Theta0.Choice) -> Result {
        precondition(!zvals.isEmpty, "at least one target")
        let uIDs = UDraw.draw(ids: pool.map(\.id), size: uSize, seed: settings.seed)
        let inU = Set(uIDs)
        precondition(Set(pool.map(\.id)).count == pool.count, "pool ids must be unique")
        let uRows = pool.filter { inU.contains($0.id) }.sorted { $0.id < $1.id }
        let scoredRows = pool.filter { !inU.contains($0.id) }

        var clock = Date()
        let theta0: Theta0
        switch choice {
        case .given(let given): theta0 = given
        case .bootstrap:
            theta0 = Theta0.bootstrap(u: uRows, config: model, settings: settings,
                                      progress: { p in self.progress?(.pretraining, p.step, p.totalSteps) })
        case .bootstrapVariant(let variant):
            var variantSettings = settings
            variantSettings.pretrainSteps = variant.pretrainSteps
            let corpus = variant.corpus == .u ? uRows : pool.sorted { $0.id < $1.id }
            theta0 = Theta0.bootstrap(u: corpus, config: model, settings: variantSettings,
                                      progress: { p in self.progress?(.pretraining, p.step, p.totalSteps) })
        }
        let theta0Seconds = choice.isBootstrap ? Date().timeIntervalSince(clock) : 0

        let tokenizer = theta0.tokenizer
        let u = Trajectory.trainingExamples(uRows, tokenizer: tokenizer)
        let zvalExamples = zvals.map { Trajectory.trainingExamples($0, tokenizer: tokenizer) }
        let scored = RowScoring.examples(scoredRows, tokenizer: tokenizer, context: theta0.model.config.context)
        let trajectory = Trajectory(settings: settings)

        let base = Trajectory.start(from: theta0.model)
        // Method B's own trajectories, one per target (Method A starts each epoch's θ_val from θ_bas).
        var valCarried = method == .B ? zvals.map { _ in Trajectory.start(from: theta0.model) } : []
        var baseLosses = [BaseLossRecord](repeating: .empty, count: scored.count)
        var valLosses = zvals.map { _ in [[Float]](repeating: [], count: scored.count) }
        var baseSeconds = 0.0
        let total = (1 + zvals.count) * settings.epochs * scored.count
        var done = 0
        let report = { (done: Int) -> Void in self.progress?(.scoring, done, total) }
        for epoch in 1...settings.epochs {
            progress?(.scoring, done, total)
            clock = Date()
            trajectory.trainBase(base, epoch: epoch, u: u)
            baseSeconds += Date().timeIntervalSince(clock)
            let b = RowScoring.inChunks(scored, done: &done, report: report) { RowScoring.baseLosses($0, base: [base], options: scoring) }
            for i in scored.indices { baseLosses[i].append(b[i]) }
            for k in zvals.indices {
                let val = method == .A ? Trajectory.start(from: base) : valCarried[k]
                trajectory.trainVal(val, epoch: epoch, method: method, u: u, zval: zvalExamples[k])
                if method == .B { valCarried[k] = val }
                let v = RowScoring.inChunks(scored, done: &done, report: report) { RowScoring.valLosses($0, val: [val], options: scoring) }
                for i in scored.indices { valLosses[k][i] += v[i] }
            }
        }
        // Each target's Z_val signal on the sample the daemon draws: nudges of θ_bas^L, which `base` now is.
        let sampleIDs = Set(ZvalAgreement.sampleIDs(ids: pool.map(\.id), uSize: uSize, seed: settings.seed))
        let sample = scoredRows.filter { sampleIDs.contains($0.id) }
        var targets = valLosses.indices.map { k in
            let importance = NgramImportance(zval: zvals[k], u: uRows)
            return TargetScores(rows: scoredRows.indices.map { i in
                var row = RowScoring.scoredRow(id: scoredRows[i].id, base: baseLosses[i], val: valLosses[k][i], function: scoreFunction)
                row.importance = importance.logWeight(scoredRows[i])
                return row
            }, valLosses: valLosses[k],
            agreement: ZvalAgreement.measure(base: base, tokenizer: tokenizer, zval: zvals[k], u: uRows, sample: sample,
                                             trajectory: trajectory, scoring: scoring))
        }
        clock = Date()
        for k in zvals.indices {
            for folds in crossFitFolds {
                guard let fitted = CrossFittedToV.losses(base: base, tokenizer: tokenizer, zval: zvals[k], scored: scored, folds: folds,
                                                         trajectory: trajectory, scoring: scoring,
                                                         progress: { done, total in self.progress?(.crossFitting, done, total) }) else { continue }
                targets[k].crossFitted[folds] = scoredRows.indices.map { i in
                    RowScoring.scoredRow(id: scoredRows[i].id, base: fitted.base[i], val: fitted.val[i], function: scoreFunction)
                }
            }
        }
        let crossFitSeconds = Date().timeIntervalSince(clock)
        return Result(u: uIDs, theta0: theta0, baseLosses: baseLosses, targets: targets, finalBase: base,
                      theta0Seconds: theta0Seconds, baseTrainingSeconds: baseSeconds, crossFitSeconds: crossFitSeconds,
                      scoringPasses: total)
    }
}

extension Theta0.Choice {
    /// Whether the pipeline trains this θ0 itself (its time is then part of the run's cost).
    public var isBootstrap: Bool {
        switch self {
        case .bootstrap, .bootstrapVariant: true
        case .given: false
        }
    }
}
