import Foundation
import Selection
import Surrogate

/// Everything `tovd evaluate` can vary.
public struct EvaluationOptions: Codable, Sendable {
    /// Directory of `<subtask>.jsonl` files (from `tovd data fetch bigbench-ni`), or any directory of
    /// JSONL files whose names are their sources.
    public var dataDirectory: String
    public var target: String
    public var outputDirectory: String
    public var poolRows = 20_000
    public var zvalRows = 200
    public var testRows = 1000
    /// Rows θ0 is pretrained on: drawn from the non-target sources, disjoint from the pool.
    public var pretrainRows = 4000
    /// Add the rest of the target subtask to the pool (off: real pools rarely hold the target task).
    public var includeTargetInPool = false
    /// Fine-tune each proxy on the selection plus Z_val (does the selection add to the target data
    /// we already have?) instead of on the selection alone.
    public var proxyAddsZval = false
    public var budgetFraction = 0.05
    /// Proxy fine-tuning rates: 1–2 orders of magnitude below the usual, where rankings are stable
    /// (arXiv 2512.24503).
    public var learningRates: [Double] = [1e-4, 3e-5, 1e-5]
    public var seeds = 3
    /// Total draws of the random policy, spread over the seeds, so its spread is known.
    public var randomDraws = 4
    public var policies: [Policy] = [.scoreRandom, .scoreOnly, .scoreOnlyUnbinned, .uncertainty, .random]
    public var epochs = 2
    public var method: TrajectoryMethod = .A
    public var scoreFunction: ScoreFunction = .improvement
    public var uSize = 2048
    public var surrogate = ModelConfig(layers: 2, width: 128, heads: 4, context: 128, vocabSize: 2048)
    public var pretrainSteps = 400
    /// η of the base trajectory; ε = η · valLearningRateRatio.
    public var baseLearningRate = 1e-3
    public var valLearningRateRatio = 0.1
    public var proxyEpochs = 2
    public var bins = 10

    public init(dataDirectory: String, target: String, outputDirectory: String) {
        self.dataDirectory = dataDirectory
        self.target = target
        self.outputDirectory = outputDirectory
    }
}

/// The reduced-LR proxy protocol: split, pretrain θ0, score the pool with ToV, select per policy,
/// fine-tune a proxy from θ0 on each selection at each reduced LR, measure target test loss.
/// Results are appended to `runs.jsonl` as they finish, so an interrupted run resumes.
public final class ToVEvaluation {
    public typealias Progress = (_ stage: String, _ done: Int, _ total: Int) -> Void

    let options: EvaluationOptions
    let progress: Progress

    public init(options: EvaluationOptions, progress: @escaping Progress = { _, _, _ in }) {
        self.options = options
        self.progress = progress
    }

    struct Row {
        var example: JSONLExample
        var dataset: String
    }

    struct Split {
        var zval: [Row], test: [Row], pool: [Row], pretrain: [Row]
    }

    // MARK: - Data

    func loadSplit() throws -> Split {
        let fm = FileManager.default
        let files = try fm.contentsOfDirectory(atPath: options.dataDirectory).filter { $0.hasSuffix(".jsonl") && $0 != "all.jsonl" }.sorted()
        guard files.contains(options.target + ".jsonl") else {
            throw EvaluationError("no \(options.target).jsonl in \(options.dataDirectory); run `tovd data fetch bigbench-ni` or pick one of \(files.prefix(5).joined(separator: ", "))")
        }
        var target: [Row] = [], others: [Row] = []
        for file in files {
            let source = String(file.dropLast(".jsonl".count))
            let dataset = BigBenchNIConverter.dataset(ofSubtask: source)
            for case .success(let example) in try JSONLReader(url: URL(fileURLWithPath: options.dataDirectory + "/" + file)) {
                var example = example
                example.source = example.source ?? source
                let row = Row(example: example, dataset: dataset)
                if source == options.target { target.append(row) } else { others.append(row) }
            }
        }
        var random = SplitMix64(seed: 0)
        target.shuffle(using: &random)
        others.shuffle(using: &random)
        guard target.count >= options.zvalRows + options.testRows else {
            throw EvaluationError("\(options.target) has \(target.count) rows; Z_val \(options.zvalRows) + test \(options.testRows) need more: lower --zval or --test-rows")
        }
        let zval = Array(target.prefix(options.zvalRows))
        let test = Array(target.dropFirst(options.zvalRows).prefix(options.testRows))
        var pool = Array(others.prefix(options.poolRows))
        if options.includeTargetInPool { pool += target.dropFirst(options.zvalRows + options.testRows) }
        let pretrain = Array(others.dropFirst(options.poolRows).prefix(options.pretrainRows))
        guard pool.count > options.uSize else {
            throw EvaluationError("the pool has \(pool.count) rows, not more than |U| = \(options.uSize): lower --u-size or raise --pool")
        }
        return Split(zval: zval, test: test, pool: pool, pretrain: pretrain)
    }

    // MARK: - Run

    public func run(commandLine: String) throws -> EvaluationReport {
        let started = Date()
        try FileManager.default.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
        progress("loading data", 0, 1)
        let split = try loadSplit()
        let (tokenizer, theta0) = try pretrainedTheta0(split)
        func examples(_ rows: [Row]) -> [Example] {
            rows.map { tokenizer.example(prompt: Array($0.example.prompt.utf8), response: Array($0.example.response.utf8)) }
        }
        let poolExamples = examples(split.pool), zvalExamples = examples(split.zval), testExamples = examples(split.test)
        let targetDataset = BigBenchNIConverter.dataset(ofSubtask: options.target)
        let n = Budget.fraction(options.budgetFraction).rowCount(eligible: split.pool.count - options.uSize)

        var ledger = try RunLedger(path: options.outputDirectory + "/runs.jsonl")
        func testLoss(_ model: Model) -> Double {
            let losses = model.losses(testExamples)
            return losses.reduce(0) { $0 + Double($1.meanNLL) } / Double(max(losses.count, 1))
        }
        func fineTuned(_ subset: [Example], lr: Double, seed: UInt64) -> Double {
            let proxy = theta0.copy()
            var training = TrainingOptions()
            training.epochs = options.proxyEpochs
            training.learningRate = Float(lr)
            training.seed = seed
            training.weightDecay = 0
            proxy.train(on: subset, options: training, progress: nil)
            return testLoss(proxy)
        }

        // References: θ0 as is, and θ0 fine-tuned on Z_val alone.
        var references = [EvaluationReport.Reference(name: "θ0 (no fine-tuning)", testLoss: try ledger.value("ref/theta0") { testLoss(theta0) })]
        for lr in options.learningRates {
            references.append(.init(name: "θ0 + Z_val only", learningRate: lr, seed: 0,
                                    testLoss: try ledger.value("ref/zval/\(lr)") { fineTuned(zvalExamples, lr: lr, seed: 0) }))
        }

        var runs: [EvaluationReport.Run] = []
        var enrichment: [EvaluationReport.Enrichment] = []
        var histogramScores: [Double] = []
        var lengths: [EvaluationReport.LengthDistribution] = []
        let randomPerSeed = (options.randomDraws + options.seeds - 1) / max(options.seeds, 1)
        for seed in 0..<options.seeds {
            let scored = try scores(seed: UInt64(seed), theta0: theta0, pool: poolExamples, zval: zvalExamples)
            let rows = scored.map(\.row)
            if seed == 0 { histogramScores = rows.map(\.score) }
            for policy in options.policies {
                let draws = policy == .random ? randomPerSeed : 1
                for draw in 0..<draws {
                    let selectionSeed = Int64(seed * 1000 + draw)
                    let settings = SelectionSettings(budget: .rows(n), policy: policy, scoreFunction: options.scoreFunction,
                                                     method: options.method, bins: options.bins, seed: selectionSeed)
                    let chosen = Selection.select(rows, settings: settings).ids
                    let subset = chosen.map { poolExamples[Int($0)] } + (options.proxyAddsZval ? zvalExamples : [])
                    let runSeed = UInt64(seed * 1000 + draw)
                    for lr in options.learningRates {
                        let loss = try ledger.value("run/\(policy.rawValue)/\(lr)/\(seed)/\(draw)") { fineTuned(subset, lr: lr, seed: runSeed) }
                        runs.append(.init(policy: policy.rawValue, learningRate: lr, seed: runSeed, testLoss: loss))
                        progress("proxy fine-tuning", runs.count, options.seeds * options.learningRates.count * (options.policies.count - 1 + randomPerSeed))
                    }
                    if seed == 0 && draw == 0 {
                        enrichment.append(.init(policy: policy.rawValue,
                                                targetInSelection: chosen.filter { split.pool[Int($0)].dataset == targetDataset }.count,
                                                selection: chosen.count,
                                                targetInPool: rows.filter { split.pool[Int($0.id)].dataset == targetDataset }.count,
                                                pool: rows.count))
                        if policy == .scoreRandom || policy == .random {
                            if lengths.isEmpty {
                                lengths.append(.init(name: "pool", lengths: rows.map { Double($0.length) }, edges: Self.lengthEdges))
                            }
                            let selectedLengths = Set(chosen)
                            lengths.append(.init(name: "selected (\(policy.rawValue))",
                                                 lengths: rows.filter { selectedLengths.contains($0.id) }.map { Double($0.length) }, edges: Self.lengthEdges))
                        }
                    }
                }
            }
        }
        let setup = EvaluationReport.Setup(
            title: "ToV selection vs baselines on \(options.target)", targetSource: options.target,
            poolRows: split.pool.count, validationRows: split.zval.count, testRows: split.test.count, budgetRows: n,
            settings: [
                "L (scoring epochs)": "\(options.epochs)", "method": options.method.rawValue, "score_fn": options.scoreFunction.rawValue,
                "|U|": "\(options.uSize)", "surrogate": "\(options.surrogate.layers)×\(options.surrogate.width), ctx \(options.surrogate.context), vocab \(options.surrogate.vocabSize)",
                "η (base)": "\(options.baseLearningRate)", "ε/η": "\(options.valLearningRateRatio)", "proxy epochs": "\(options.proxyEpochs)",
                "θ0 pretraining": "\(options.pretrainSteps) steps on \(split.pretrain.count) non-pool rows", "bins": "\(options.bins)",
                "target dataset": targetDataset, "target task in pool": options.includeTargetInPool ? "yes" : "no",
                "proxy data": options.proxyAddsZval ? "selection + Z_val" : "selection",
            ])
        let report = EvaluationReport(
            setup: setup, runs: runs, references: references,
            scoreHistogram: Histogram(values: histogramScores, bins: 30),
            lengths: lengths, enrichment: enrichment, wallTimeSeconds: Date().timeIntervalSince(started), commandLine: commandLine)
        try write(report)
        return report
    }

    static let lengthEdges: [Double] = [0, 2, 4, 8, 16, 32, 64, 128, 256, 512]

    func write(_ report: EvaluationReport) throws {
        let dir = options.outputDirectory
        try MarkdownReport.render(report).write(toFile: dir + "/report.md", atomically: true, encoding: .utf8)
        try HTMLReport.render(report).write(toFile: dir + "/report.html", atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(to: URL(fileURLWithPath: dir + "/report.json"))
    }

    // MARK: - θ0

    func pretrainedTheta0(_ split: Split) throws -> (Tokenizer, Model) {
        let path = options.outputDirectory + "/theta0.tovckpt"
        if let existing = try? SurrogateCheckpoint.read(from: path), existing.model.config == options.surrogate {
            return (existing.tokenizer, existing.model)
        }
        let texts = split.pretrain.map { Array($0.example.prompt.utf8) + [0x0A] + Array($0.example.response.utf8) }
        progress("tokenizer", 0, options.surrogate.vocabSize)
        let tokenizer = Tokenizer.train(sample: Array(texts.prefix(3000)), vocabSize: options.surrogate.vocabSize) { done, total in
            self.progress("tokenizer", done, total)
        }
        let model = Model(config: options.surrogate, seed: 0)
        var training = TrainingOptions()
        training.epochs = 1000
        training.maxSteps = options.pretrainSteps
        training.learningRate = Float(options.baseLearningRate * 3)
        training.schedule = .warmupCosine
        training.warmupSteps = max(1, options.pretrainSteps / 10)
        model.train(on: texts.map { Example(prompt: [], response: tokenizer.encode($0), allTokens: true) }, options: training) { p in
            self.progress("pretraining θ0 (loss \(String(format: "%.3f", p.loss)))", p.step, p.totalSteps)
        }
        try CheckpointFile(configJSON: Array(try JSONEncoder().encode(model.config)), tokenizer: tokenizer.serialized(),
                           metadata: ["kind": "theta0"], tensors: model.parameters).write(to: path)
        return (tokenizer, model)
    }

    // MARK: - ToV scores

    struct Scored { var row: ScoredRow }

    /// φ, ψ and length for every pool row outside U (row ids are pool indices).
    func scores(seed: UInt64, theta0: Model, pool: [Example], zval: [Example]) throws -> [Scored] {
        var random = SplitMix64(seed: 7919 &* (seed + 1))
        var indices = Array(pool.indices)
        indices.shuffle(using: &random)
        let u = Set(indices.prefix(options.uSize))
        let uExamples = indices.prefix(options.uSize).map { pool[$0] }
        let scoredIndices = pool.indices.filter { !u.contains($0) }
        let scoredExamples = scoredIndices.map { pool[$0] }

        func epochOptions(_ lr: Double, _ epoch: Int) -> TrainingOptions {
            var o = TrainingOptions()
            o.learningRate = Float(lr)
            o.seed = seed &* 100 &+ UInt64(epoch)
            return o
        }
        let eta = options.baseLearningRate, epsilon = options.baseLearningRate * options.valLearningRateRatio
        let base = theta0.copy()
        var valTrajectory = theta0.copy()   // Method B's own weights
        var baseLosses = [[Float]](repeating: [], count: scoredExamples.count)
        var valLosses = [[Float]](repeating: [], count: scoredExamples.count)
        var psi = [Float](repeating: 0, count: scoredExamples.count)
        var tokens = [Int](repeating: 0, count: scoredExamples.count)
        for epoch in 1...options.epochs {
            progress("seed \(seed): θ_bas epoch \(epoch)", epoch - 1, options.epochs)
            base.train(on: uExamples, options: epochOptions(eta, epoch), progress: nil)
            let val: Model
            switch options.method {
            case .A:
                val = base.copy()
            case .B:
                valTrajectory.train(on: uExamples, options: epochOptions(eta, 500 + epoch), progress: nil)
                val = valTrajectory
            }
            val.train(on: zval, options: epochOptions(epsilon, 1000 + epoch), progress: nil)
            if options.method == .B { valTrajectory = val }
            progress("seed \(seed): scoring epoch \(epoch)", epoch - 1, options.epochs)
            let b = base.losses(scoredExamples), v = val.losses(scoredExamples)
            for i in scoredExamples.indices {
                baseLosses[i].append(b[i].meanNLL)
                valLosses[i].append(v[i].meanNLL)
                psi[i] = b[i].psi
                tokens[i] = b[i].tokenCount
            }
        }
        return scoredIndices.enumerated().map { k, index in
            let phi = tovScore(baseLosses: baseLosses[k].map(Double.init), valLosses: valLosses[k].map(Double.init), function: options.scoreFunction)
            return Scored(row: ScoredRow(id: Int64(index), score: phi, uncertainty: Double(psi[k]), length: tokens[k]))
        }
    }
}

/// Finished results by key, in `runs.jsonl`; computing a key that is there returns the stored value.
struct RunLedger {
    let path: String
    var values: [String: Double] = [:]

    init(path: String) throws {
        self.path = path
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let key = object["key"] as? String, let value = object["test_loss"] as? Double else { continue }
                values[key] = value
            }
        } else {
            FileManager.default.createFile(atPath: path, contents: nil)
        }
    }

    mutating func value(_ key: String, _ compute: () throws -> Double) throws -> Double {
        if let known = values[key] { return known }
        let value = try compute()
        values[key] = value
        let line = try JSONSerialization.data(withJSONObject: ["key": key, "test_loss": value], options: [.sortedKeys])
        if let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            handle.write(line + Data("\n".utf8))
            try handle.close()
        }
        return value
    }
}

public struct EvaluationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
