import Foundation
import Selection
import Surrogate
import ToVPipeline

/// `tovd evaluate --targets A,B`: one pool scored for several dev targets at once, as a daemon with
/// several targets scores it (one U, θ0 and base trajectory; a θ_val trajectory per target), against one
/// run per target alone on the same pool, Z_val and seed, as K separate schemas would score it. For each
/// seed it reports whether every target's φ and selection are the single-target run's, and what both cost.
///
/// The pool is the first target's held-out split with every other target's dataset and held-out
/// contexts taken out, so no target's Z_val or test rows are scored for another.
public struct SharedScoringCheck {
    public typealias Progress = ToVEvaluation.Progress

    /// The first target's options: its split, pool size, |U|, surrogate, trajectory and selection settings.
    let options: EvaluationOptions
    /// Every target, the first one's first.
    let targets: [String]
    let progress: Progress

    public init(options: EvaluationOptions, otherTargets: [String], progress: @escaping Progress = { _, _, _ in }) throws {
        let targets = [options.target] + otherTargets
        guard targets.count >= 2, Set(targets).count == targets.count else {
            throw EvaluationError("--targets needs two or more different subtasks, e.g. subtask061_ropes_answer_generation,subtask028_drop_answer_generation")
        }
        guard options.seeds >= 1 else { throw EvaluationError("--seeds must be at least 1") }
        guard let theta0 = options.scoringTheta0s.first, theta0 == .bootstrap || theta0 == .pretrained else {
            throw EvaluationError("--targets scores from one θ0: --theta0 bootstrap (the daemon's default) or pretrained")
        }
        self.options = options
        self.targets = targets
        self.progress = progress
    }

    /// One seed's comparison.
    public struct Seed: Codable, Sendable {
        public struct Target: Codable, Sendable {
            public var target: String
            public var zvalRows: Int
            /// Largest |φ(shared) − φ(alone)| over the scored rows, and how many rows differ at all.
            public var maxAbsPhiDifference: Double
            public var rowsWithDifferentPhi: Int
            /// Whether the daemon's default selection (score_random at the budget) picks the same rows.
            public var sameSelection: Bool
            /// Wall seconds of the run for this target alone (θ0 if bootstrapped, U's trajectory, θ_val, 2L passes).
            public var aloneSeconds: Double
        }
        public var seed: Int
        public var scoredRows: Int
        public var targets: [Target]
        /// Wall seconds of the shared run, and its forward passes over the scored rows: (1 + K)·L per row.
        public var sharedSeconds: Double
        public var sharedPasses: Int
        /// The same for the runs alone, summed: 2·K·L passes per row.
        public var aloneSeconds: Double
        public var alonePasses: Int
        /// Which ran first (they alternate by seed, so a drift of the machine's speed does not favour one).
        public var sharedFirst: Bool
    }

    public struct Report: Codable, Sendable {
        public var targets: [String]
        public var theta0: String
        public var poolRows: Int
        public var budgetRows: Int
        public var surrogate: String
        public var epochs: Int
        public var seeds: [Seed]
        /// Shared ÷ alone per seed: wall time and forward passes.
        public var wallRatio: Interval
        public var passRatio: Double
        public var commandLine: String
    }

    public func run(commandLine: String) throws -> Report {
        // What shapes the stored seeds: the options and the targets.
        var shaping = options.resultShapingJSON
        shaping["target"] = nil
        shaping["targets"] = targets.joined(separator: ",")
        let study = StudyDirectory<Seed>(directory: options.outputDirectory, name: "shared-scoring", optionsFile: "shared-options.json")
        try study.claim(shaping: shaping)
        progress("loading data", 0, 1)
        // The files are read once; each target splits them.
        let corpus = try ToVEvaluation(options: options).readCorpus()
        let splits = try targets.map { target -> ToVEvaluation.Split in
            var o = options
            o.target = target
            return try ToVEvaluation(options: o).loadSplit(from: corpus)
        }
        // Every other target's dataset and Z_val/test contexts out of the first target's pool and θ0 text.
        let others = splits.dropFirst()
        let otherDatasets = Set(others.map(\.heldOut.targetDataset))
        let otherHeldOut = ContextOverlap(contexts: others.flatMap { split in
            let prompts = (split.zval + split.test).map(\.example.prompt)
            let prefix = ContextKey.commonPrefix(prompts)
            return prompts.flatMap { ContextKey.contexts(prompt: $0, prefix: prefix) }
        })
        func clean(_ rows: [ToVEvaluation.Row]) -> [ToVEvaluation.Row] {
            rows.filter { !otherDatasets.contains($0.dataset) && otherHeldOut.contained(in: $0.example.prompt + "\n" + $0.example.response).isEmpty }
        }
        let pool = clean(splits[0].pool)
        guard pool.count > options.uSize else {
            throw EvaluationError("the shared pool has \(pool.count) rows, not more than |U| = \(options.uSize): raise --pool or lower --u-size")
        }
        let poolTexts = ToVEvaluation.rowTexts(pool)
        let zvals = splits.map { ToVEvaluation.rowTexts($0.zval) }

        let theta0Kind = options.scoringTheta0s[0]
        let choice = try ToVEvaluation(options: options).singleTheta0(kind: theta0Kind, pretrain: clean(splits[0].pretrain), progress: progress)
        let budget = Budget.fraction(options.budgetFraction).rowCount(eligible: pool.count - options.uSize)

        var seeds: [Seed] = []
        for seed in 0..<options.seeds {
            if let stored = study.load(seed: seed) {
                seeds.append(stored)
                continue
            }
            let settings = TrajectorySettings(epochs: options.epochs, learningRate: options.baseLearningRate,
                                              valLearningRateRatio: options.valLearningRateRatio,
                                              pretrainSteps: options.bootstrapPretrainSteps, seed: Int64(seed))
            func pipeline(_ label: String) -> PipelineRun {
                var p = PipelineRun(model: options.surrogate, settings: settings, uSize: options.uSize, method: options.method,
                                    scoreFunction: options.scoreFunction)
                // One bar per run and stage (a parenthesis would make it a note on one bar).
                p.progress = { [progress] stage, done, total in progress("seed \(seed): \(label): \(stage.rawValue)", done, total) }
                return p
            }
            func timed(_ body: () -> PipelineRun.Result) -> (PipelineRun.Result, Double) {
                let started = ContinuousClock.now
                let result = body()
                let elapsed = ContinuousClock.now - started
                return (result, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
            }
            func shared() -> (PipelineRun.Result, Double) {
                timed { pipeline("\(targets.count) targets at once").run(pool: poolTexts, zvals: zvals, theta0: choice) }
            }
            func alone() -> [(PipelineRun.Result, Double)] {
                zip(targets, zvals).map { target, zval in
                    timed { pipeline("\(target) alone").run(pool: poolTexts, zval: zval, theta0: choice) }
                }
            }
            // Alternate the order by seed so a drift of the machine's speed does not favour one side.
            let sharedFirst = seed % 2 == 0
            let together: (PipelineRun.Result, Double), apart: [(PipelineRun.Result, Double)]
            if sharedFirst { together = shared(); apart = alone() } else { apart = alone(); together = shared() }

            let selection = SelectionSettings(budget: .rows(budget), policy: .scoreRandom, scoreFunction: options.scoreFunction,
                                              method: options.method, bins: options.bins, seed: Int64(seed))
            var perTarget: [Seed.Target] = []
            for (k, (result, seconds)) in apart.enumerated() {
                let sharedRows = together.0.targets[k].rows, aloneRows = result.rows
                precondition(sharedRows.map(\.id) == aloneRows.map(\.id), "both runs score the rows outside the same U")
                let differences = zip(sharedRows, aloneRows).map { abs($0.score - $1.score) }
                perTarget.append(.init(
                    target: targets[k], zvalRows: zvals[k].count,
                    maxAbsPhiDifference: differences.max() ?? 0, rowsWithDifferentPhi: differences.filter { $0 != 0 }.count,
                    sameSelection: Selection.select(sharedRows, settings: selection).ids == Selection.select(aloneRows, settings: selection).ids,
                    aloneSeconds: seconds))
            }
            let record = Seed(seed: seed, scoredRows: together.0.rows.count, targets: perTarget,
                              sharedSeconds: together.1, sharedPasses: together.0.scoringPasses,
                              aloneSeconds: apart.map(\.1).reduce(0, +), alonePasses: apart.map(\.0.scoringPasses).reduce(0, +),
                              sharedFirst: sharedFirst)
            try study.save(record, seed: seed)
            seeds.append(record)
        }

        let ratios = seeds.map { $0.sharedSeconds / $0.aloneSeconds }
        let report = Report(targets: targets, theta0: theta0Kind.rawValue, poolRows: pool.count, budgetRows: budget,
                            surrogate: "\(shapeLabel(options.surrogate)), ctx \(options.surrogate.context), scoring in \(ScoringPrecision.preferred.rawValue)",
                            epochs: options.epochs, seeds: seeds,
                            wallRatio: Stats.pairedInterval(ratios, ratios.map { _ in 0 }),
                            passRatio: Double(seeds[0].sharedPasses) / Double(seeds[0].alonePasses), commandLine: commandLine)
        try study.write(report: report)
        return report
    }

    /// The report as Markdown: one line per seed and target, then the cost.
    public static func markdown(_ report: Report) -> String {
        var lines = ["## \(report.targets.count) targets scored at once vs each alone",
                     "",
                     "Pool \(report.poolRows) rows, surrogate \(report.surrogate), L = \(report.epochs), θ0 \(report.theta0), budget \(report.budgetRows) rows, \(report.seeds.count) seeds.",
                     "",
                     "| seed | target | Z_val | max abs φ difference | rows with another φ | same selection | alone s |",
                     "|---|---|---|---|---|---|---|"]
        for seed in report.seeds {
            for t in seed.targets {
                lines.append("| \(seed.seed) | \(t.target) | \(t.zvalRows) | \(t.maxAbsPhiDifference) | \(t.rowsWithDifferentPhi) of \(seed.scoredRows) | \(t.sameSelection ? "yes" : "**no**") | \(String(format: "%.1f", t.aloneSeconds)) |")
            }
        }
        lines += ["",
                  "| seed | first | at once s | alone s (sum) | at once ÷ alone | passes at once ÷ alone |",
                  "|---|---|---|---|---|---|"]
        for seed in report.seeds {
            lines.append("| \(seed.seed) | \(seed.sharedFirst ? "at once" : "alone") | \(String(format: "%.1f", seed.sharedSeconds)) | \(String(format: "%.1f", seed.aloneSeconds)) | \(String(format: "%.3f", seed.sharedSeconds / seed.aloneSeconds)) | \(String(format: "%.3f", Double(seed.sharedPasses) / Double(seed.alonePasses))) |")
        }
        let r = report.wallRatio
        lines += ["",
                  "Wall time at once ÷ alone: \(String(format: "%.3f", r.estimate)) (95 % interval \(String(format: "%.3f", r.lower)) to \(String(format: "%.3f", r.upper)), \(r.n) seeds); forward passes \(String(format: "%.3f", report.passRatio)) = (1 + K) / 2K."]
        return lines.joined(separator: "\n")
    }
}
