import Foundation
import Selection
import Surrogate
import ToVPipeline

/// `tovd evaluate --zval-signal 25,50,100,200`: does the daemon's Z_val signal (``ZvalAgreement``) tell
/// a Z_val too small or too noisy to trust from a good one, on real rows? For each seed it runs the
/// daemon's pipeline once with every Z_val of the study as a target — the first n rows of the target's
/// held-out Z_val for each size n, and each size again with a share of its rows replaced by rows of
/// other datasets (outside the pool and θ0's text) — and reports each one's signal, and how far its φ
/// is from the φ of the largest clean Z_val (what a small or noisy Z_val does to the ranking).
///
/// Only U and the signal's sample are needed: the pool is cut to the first |U| + 512 rows in U's rank
/// order, which keeps U and the sample the whole pool would give (``ZvalAgreement/sampleIDs``).
public struct ZvalSignalStudy {
    public typealias Progress = ToVEvaluation.Progress

    let options: EvaluationOptions
    /// Z_val sizes, ascending; the largest is the reference.
    let sizes: [Int]
    /// Share of each noisy Z_val's rows from other datasets.
    let offTargetShare: Double
    let progress: Progress

    public init(options: EvaluationOptions, sizes: [Int], offTargetShare: Double, progress: @escaping Progress = { _, _, _ in }) throws {
        let sizes = Array(Set(sizes)).sorted()
        guard let largest = sizes.last, sizes.first! >= 4 else {
            throw EvaluationError("--zval-signal needs Z_val sizes of at least 4 rows, e.g. 25,50,100,200")
        }
        guard offTargetShare > 0, offTargetShare < 1 else { throw EvaluationError("the noisy Z_vals need an off-target share in (0, 1), e.g. 0.25") }
        guard options.seeds >= 2 else { throw EvaluationError("--seeds must be at least 2 for an interval") }
        var options = options
        options.zvalRows = largest
        options.zvalOffTargetShare = 0
        self.options = options
        self.sizes = sizes
        self.offTargetShare = offTargetShare
        self.progress = progress
    }

    /// One Z_val of the study.
    public struct Arm: Codable, Sendable, Equatable {
        public var zvalRows: Int
        /// Of them, rows from other datasets.
        public var offTargetRows: Int

        public var label: String {
            offTargetRows == 0 ? "|Z_val| \(zvalRows)" : "|Z_val| \(zvalRows), \(offTargetRows) off-target"
        }
    }

    public struct Seed: Codable, Sendable {
        public struct Result: Codable, Sendable {
            public var arm: Arm
            public var agreement: ZvalAgreement?
            /// Spearman correlation of this Z_val's φ with the largest clean Z_val's φ on the sample.
            public var phiVersusReference: Double
            /// Shares of the target's own Z_val rows and of the off-target ones (nil without any) that the
            /// rest of Z_val does not help (held-out gain ≤ 0: what tov.zval_unhelped lists).
            public var targetRowsUnhelped: Double?
            public var offTargetRowsUnhelped: Double?
        }
        public var seed: Int
        public var results: [Result]
        public var seconds: Double
    }

    public struct Report: Codable, Sendable {
        public struct Summary: Codable, Sendable {
            public var arm: Arm
            /// Over seeds: the signal (agreement beyond the control), the halves' raw correlation, and
            /// φ's agreement with the reference Z_val's φ.
            public var agreement: Interval
            public var halves: Interval
            public var transfer: Interval
            public var helpedShare: Interval
            public var phiVersusReference: Interval
            public var targetRowsUnhelped: Interval
            public var offTargetRowsUnhelped: Interval
            /// Z_val's context groups (the same for every seed: the split's Z_val is fixed).
            public var groups: Int
        }
        /// A pair the signal should tell apart: first − second per seed.
        public struct Separation: Codable, Sendable {
            /// agreement, transfer or helped share.
            public var statistic: String
            public var first: Arm
            public var second: Arm
            public var difference: Interval
            /// Seeds where the first arm's statistic is below the second's.
            public var seedsOrdered: Int
        }
        public var target: String
        public var theta0: String
        public var poolRows: Int
        public var uSize: Int
        public var sampleRows: Int
        public var surrogate: String
        public var epochs: Int
        public var offTargetShare: Double
        public var seeds: [Seed]
        public var summaries: [Summary]
        public var separations: [Separation]
        public var commandLine: String
    }

    var arms: [Arm] {
        sizes.map { Arm(zvalRows: $0, offTargetRows: 0) }
            + sizes.map { Arm(zvalRows: $0, offTargetRows: Int((offTargetShare * Double($0)).rounded())) }
    }

    public func run(commandLine: String) throws -> Report {
        var shaping = options.resultShapingJSON
        shaping["zvalSignalSizes"] = sizes.map(String.init).joined(separator: ",")
        shaping["zvalSignalOffTargetShare"] = "\(offTargetShare)"
        let study = StudyDirectory<Seed>(directory: options.outputDirectory, name: "zval-signal", optionsFile: "zval-signal-options.json")
        try study.claim(shaping: shaping)

        progress("loading data", 0, 1)
        let evaluation = ToVEvaluation(options: options)
        let corpus = try evaluation.readCorpus()
        let split = try evaluation.loadSplit(from: corpus)
        // The same split with the last rows of Z_val replaced by rows of other datasets: its pool and θ0
        // text are drawn before the noise, so they are this split's.
        var noisyOptions = options
        noisyOptions.zvalOffTargetShare = offTargetShare
        let noisy = try ToVEvaluation(options: noisyOptions).loadSplit(from: corpus)
        precondition(noisy.pool.map(\.example.prompt) == split.pool.map(\.example.prompt), "the noise is drawn after the pool")
        let noise = Array(noisy.zval.suffix(noisy.heldOut.zvalOffTarget))

        let zvals = arms.map { arm in
            ToVEvaluation.rowTexts(Array(split.zval.prefix(arm.zvalRows - arm.offTargetRows)) + Array(noise.prefix(arm.offTargetRows)))
        }
        let poolTexts = ToVEvaluation.rowTexts(split.pool)
        let theta0Kind = options.scoringTheta0s[0]
        let choice = try evaluation.singleTheta0(kind: theta0Kind, pretrain: split.pretrain, progress: progress)
        let reference = arms.firstIndex(of: Arm(zvalRows: sizes.last!, offTargetRows: 0))!

        var seeds: [Seed] = []
        for seed in 0..<options.seeds {
            if let stored = study.load(seed: seed) {
                seeds.append(stored)
                continue
            }
            let started = ContinuousClock.now
            let settings = TrajectorySettings(epochs: options.epochs, learningRate: options.baseLearningRate,
                                              valLearningRateRatio: options.valLearningRateRatio,
                                              pretrainSteps: options.bootstrapPretrainSteps, seed: Int64(seed))
            // U and the sample of the whole pool, nothing else: U is the first |U| in its rank order,
            // the sample the next 512.
            let kept = Set(UDraw.ranked(ids: poolTexts.map(\.id), seed: settings.seed).prefix(options.uSize + ZvalAgreement.sampleSize))
            var pipeline = PipelineRun(model: options.surrogate, settings: settings, uSize: options.uSize, method: options.method,
                                       scoreFunction: options.scoreFunction)
            pipeline.progress = { [progress] stage, done, total in progress("seed \(seed): \(arms.count) Z_vals: \(stage.rawValue)", done, total) }
            let result = pipeline.run(pool: poolTexts.filter { kept.contains($0.id) }, zvals: zvals, theta0: choice)
            let referencePhi = result.targets[reference].rows.map(\.score)
            let record = Seed(seed: seed, results: zip(arms, result.targets).map { arm, target in
                // The off-target rows are the last of each Z_val.
                let gains = target.agreement?.rowGains ?? []
                func unhelped(_ part: ArraySlice<Double>) -> Double? {
                    part.isEmpty ? nil : Double(part.filter { $0 <= 0 }.count) / Double(part.count)
                }
                let onTarget = arm.zvalRows - arm.offTargetRows
                return Seed.Result(arm: arm, agreement: target.agreement,
                                   phiVersusReference: RankCorrelation.spearman(target.rows.map(\.score), referencePhi),
                                   targetRowsUnhelped: unhelped(gains.prefix(onTarget)), offTargetRowsUnhelped: unhelped(gains.dropFirst(onTarget)))
            }, seconds: (ContinuousClock.now - started).seconds)
            try study.save(record, seed: seed)
            seeds.append(record)
        }

        let report = Report(target: options.target, theta0: theta0Kind.rawValue, poolRows: split.pool.count, uSize: options.uSize,
                            sampleRows: seeds[0].results.first?.agreement?.sampleRows ?? 0,
                            surrogate: "\(shapeLabel(options.surrogate)), ctx \(options.surrogate.context)", epochs: options.epochs,
                            offTargetShare: offTargetShare, seeds: seeds, summaries: summaries(seeds), separations: separations(seeds),
                            commandLine: commandLine)
        try study.write(report: report)
        return report
    }

    func values(_ seeds: [Seed], _ arm: Arm, _ value: (Seed.Result) -> Double?) -> [Double] {
        seeds.map { seed in seed.results.first { $0.arm == arm }.flatMap(value) ?? .nan }
    }

    func summaries(_ seeds: [Seed]) -> [Report.Summary] {
        arms.map { arm in
            func interval(_ value: (Seed.Result) -> Double?) -> Interval {
                let x = values(seeds, arm, value)
                return Stats.pairedInterval(x, x.map { _ in 0 })
            }
            return Report.Summary(arm: arm, agreement: interval { $0.agreement?.agreement }, halves: interval { $0.agreement?.halves },
                                  transfer: interval { $0.agreement?.transfer }, helpedShare: interval { $0.agreement?.helpedShare },
                                  phiVersusReference: interval { $0.phiVersusReference },
                                  targetRowsUnhelped: interval { $0.targetRowsUnhelped }, offTargetRowsUnhelped: interval { $0.offTargetRowsUnhelped },
                                  groups: seeds.first?.results.first { $0.arm == arm }?.agreement?.groups ?? 0)
        }
    }

    /// For each statistic, the smallest clean Z_val against the largest, and each size's noisy Z_val
    /// against its clean one.
    func separations(_ seeds: [Seed]) -> [Report.Separation] {
        let clean = sizes.map { Arm(zvalRows: $0, offTargetRows: 0) }
        var pairs = [(clean.first!, clean.last!)]
        pairs += arms.filter { $0.offTargetRows > 0 }.map { ($0, Arm(zvalRows: $0.zvalRows, offTargetRows: 0)) }
        let statistics: [(String, (ZvalAgreement) -> Double)] = [("agreement", \.agreement), ("transfer", \.transfer), ("helped share", \.helpedShare)]
        return statistics.flatMap { name, statistic in
            pairs.map { first, second in
                let a = values(seeds, first) { $0.agreement.map(statistic) }, b = values(seeds, second) { $0.agreement.map(statistic) }
                return Report.Separation(statistic: name, first: first, second: second, difference: Stats.pairedInterval(a, b),
                                         seedsOrdered: zip(a, b).filter { $0 < $1 }.count)
            }
        }
    }

    public static func markdown(_ report: Report) -> String {
        func f(_ x: Double) -> String { x.isFinite ? String(format: "%.3f", x) : "n/a" }
        func interval(_ i: Interval) -> String { "\(f(i.estimate)) (\(f(i.lower)) to \(f(i.upper)))" }
        var lines = ["## The Z_val signal: \(report.target)",
                     "",
                     "Pool \(report.poolRows) rows (|U| \(report.uSize), signal sample \(report.sampleRows) rows), surrogate \(report.surrogate), L = \(report.epochs), θ0 \(report.theta0), \(report.seeds.count) seeds; noisy Z_vals have \(Int(report.offTargetShare * 100)) % of their rows from other datasets. Means over seeds with 95 % t intervals.",
                     "",
                     "| Z_val | context groups | halves' agreement on the pool | raw | transfer between halves | Z_val rows the other half helps | target rows unhelped | off-target rows unhelped | φ vs the largest clean Z_val's φ |",
                     "|---|---|---|---|---|---|---|---|---|"]
        for s in report.summaries {
            lines.append("| \(s.arm.label) | \(s.groups) | \(interval(s.agreement)) | \(interval(s.halves)) | \(interval(s.transfer)) | \(interval(s.helpedShare)) | \(interval(s.targetRowsUnhelped)) | \(s.arm.offTargetRows > 0 ? interval(s.offTargetRowsUnhelped) : "–") | \(interval(s.phiVersusReference)) |")
        }
        lines += ["", "| statistic | pair | difference | seeds where the first is lower |", "|---|---|---|---|"]
        for p in report.separations {
            lines.append("| \(p.statistic) | \(p.first.label) − \(p.second.label) | \(interval(p.difference)) | \(p.seedsOrdered) of \(p.difference.n) |")
        }
        return lines.joined(separator: "\n")
    }
}
