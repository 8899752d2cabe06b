import Foundation
import JSONL
import Selection
import Surrogate
import ToVPipeline

/// A policy `tovd evaluate` compares: one of the daemon's selection policies, or a baseline of another
/// family (evaluation only): the gradient-similarity baselines scored by ``LessScorer`` and selected top-n
/// per length bin (`less`: the sign feature, "LESS-like"; `less_adam`: LESS's Adam-preconditioned
/// gradients), ``DSIR`` (`dsir`: hashed n-gram importance resampling) and ``LengthMatchedRandom``
/// (`random_length_matched`: random rows with Z_val's response lengths). Issue 27's candidates:
/// `crossfit` and `<policy>+diverse` here, and the daemon's `score_dsir`.
public enum EvaluationPolicy: Hashable, Codable, Sendable, RawRepresentable {
    case selection(Policy)
    /// score_random with another share of the budget by score (the `score_share` setting), e.g.
    /// `score_random@0.25` (issue 27).
    case scoreShare(Double)
    /// score_random from cross-fitted ToV's φ (``ToVPipeline/CrossFittedToV``) with this many folds:
    /// `crossfit` (2 folds, plain ToV's passes per row), `crossfit@4`.
    case crossFitted(Int)
    /// score_random, score_dsir or score_only with a ``ClusterQuota`` in the score half:
    /// `score_dsir+diverse` (issue 27's diversity candidate).
    case diverse(Policy)
    case less
    case lessAdam
    case dsir
    case randomLengthMatched
    /// Not a selection anyone can make: the pool's rows of the target's own dataset (outside U, at most
    /// the budget, in the random baseline's order), the oracle issue 27's goal measures the gap to.
    case oracle

    public init?(rawValue: String) {
        switch rawValue {
        case "less": self = .less
        case "less_adam": self = .lessAdam
        case "dsir": self = .dsir
        case "random_length_matched": self = .randomLengthMatched
        case "oracle": self = .oracle
        case "crossfit": self = .crossFitted(CrossFittedToV.defaultFolds)
        default:
            if rawValue.hasPrefix("crossfit@") {
                guard let folds = Int(rawValue.dropFirst("crossfit@".count)), (2...16).contains(folds) else { return nil }
                self = .crossFitted(folds)
                return
            }
            if rawValue.hasSuffix(Self.diverseSuffix) {
                guard let p = Policy(rawValue: String(rawValue.dropLast(Self.diverseSuffix.count))), Self.diversePolicies.contains(p) else { return nil }
                self = .diverse(p)
                return
            }
            if rawValue.hasPrefix("score_random@") {
                guard let share = Double(rawValue.dropFirst("score_random@".count)), share >= 0, share <= 1 else { return nil }
                self = .scoreShare(share)
                return
            }
            guard let p = Policy(rawValue: rawValue) else { return nil }
            self = .selection(p)
        }
    }

    public var rawValue: String {
        switch self {
        case .selection(let p): return p.rawValue
        case .scoreShare(let share): return "score_random@\(share)"
        case .crossFitted(let folds): return folds == CrossFittedToV.defaultFolds ? "crossfit" : "crossfit@\(folds)"
        case .diverse(let p): return p.rawValue + Self.diverseSuffix
        case .less: return "less"
        case .lessAdam: return "less_adam"
        case .dsir: return "dsir"
        case .randomLengthMatched: return "random_length_matched"
        case .oracle: return "oracle"
        }
    }

    static let diverseSuffix = "+diverse"
    /// The policies with a score half a ``ClusterQuota`` can spread.
    static let diversePolicies: [Policy] = [.scoreRandom, .scoreDSIR, .scoreOnly]

    /// The folds of a cross-fitted policy; nil for the others.
    var crossFitFolds: Int? {
        if case .crossFitted(let folds) = self { folds } else { nil }
    }

    /// The gradient feature a LESS policy scores with; nil for the others.
    var lessFeature: LessScorer.Feature? {
        switch self {
        case .less: .sign
        case .lessAdam: .adam
        default: nil
        }
    }

    public static let random = EvaluationPolicy.selection(.random)
    /// The daemon's default policy: the selection the headline is about.
    public static let headline = EvaluationPolicy.selection(.scoreRandom)

    public init(from decoder: Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let policy = EvaluationPolicy(rawValue: name) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown policy \(name)"))
        }
        self = policy
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// What a proxy is fine-tuned on besides a policy's selection.
public enum EvaluationArm: String, Codable, Sendable, CaseIterable {
    /// Selection + Z_val: the user has Z_val and will train on it (the primary comparison).
    case withZval = "with_zval"
    /// The selection alone (secondary).
    case alone
}

/// The proxy's context: a fixed token count (≥ 256 reads the whole prompt of most rows), or the 95th
/// percentile of the target's row lengths (prompt + SEP + response tokens under θ0's tokenizer).
public enum ProxyContext: Codable, Sendable, Equatable {
    case tokens(Int)
    case targetP95

    public init?(_ text: String) {
        if text == "p95" { self = .targetP95 } else if let n = Int(text), n >= 16 { self = .tokens(n) } else { return nil }
    }

    public var description: String {
        switch self {
        case .tokens(let n): "\(n)"
        case .targetP95: "p95"
        }
    }
}

/// Everything `tovd evaluate` can vary.
public struct EvaluationOptions: Codable, Sendable {
    /// Directory of `<subtask>.jsonl` files (from `tovd data fetch bigbench-ni`), or any directory of
    /// JSONL files whose names are their sources.
    public var dataDirectory: String
    public var target: String
    public var outputDirectory: String
    /// Where θ0 and the proxies' θ0 are cached, keyed by everything that shapes them (shared by runs).
    public var cacheDirectory = ".cache/tovd-eval"
    public var poolRows = 20_000
    public var zvalRows = 200
    /// Share of Z_val replaced by rows of other datasets (``HeldOutSplit/Parameters/zvalOffTargetShare``).
    public var zvalOffTargetShare = 0.0
    public var testRows = 1000
    /// Rows θ0 is pretrained on: drawn from the non-target sources, disjoint from the pool, then
    /// de-duplicated by ``PretrainingCorpus``.
    public var pretrainRows = 40_000
    /// Share of the pool made of the target's own rows, held out from Z_val and test by context (0: the
    /// transfer setting, where the pool holds no row of the target's source dataset; real pools often
    /// hold a few in-distribution rows).
    public var targetShare = 0.0
    /// What each proxy is fine-tuned on: the selection + Z_val (primary: does the selection add to the
    /// target data the user has?) and the selection alone (secondary).
    public var arms: [EvaluationArm] = EvaluationArm.allCases
    public var budgetFraction = 0.05
    /// Proxy fine-tuning rates: 1–2 orders of magnitude below the usual, where rankings are stable
    /// (arXiv 2512.24503). Every one is reported, beside the tuned (best-LR-per-policy) comparison.
    public var learningRates: [Double] = [3e-4, 1e-4, 3e-5]
    /// Scoring seeds; each also seeds one random-baseline draw (from its own stream) and the proxies'
    /// data order, shared by every arm of the seed so the comparisons pair by seed.
    public var seeds = 5
    public var policies = defaultPolicies
    /// `tovd evaluate`'s --policies default: the daemon's policy and its score-only variant, the baselines
    /// of the other families, and the two random controls.
    public static let defaultPolicies: [EvaluationPolicy] = [.selection(.scoreRandom), .selection(.scoreOnly), .lessAdam, .dsir,
                                                             .randomLengthMatched, .random]
    public var epochs = 2
    public var method: TrajectoryMethod = .A
    public var scoreFunction: ScoreFunction = .improvement
    public var uSize = 2048
    public var surrogate = ModelConfig(layers: 2, width: 128, heads: 4, context: 128, vocabSize: 2048)
    /// The proxies fine-tuned on each selection, as (layers, width, heads): a setting apart from the
    /// surrogate's; each is pretrained like θ0 on θ0's text with θ0's tokenizer, at ``proxyContext``.
    public var proxies: [ProxyShape] = [ProxyShape(layers: 2, width: 128, heads: 4)]
    /// The proxies' context: ≥ 256 tokens reads the whole prompt the surrogate reads (its 128 keep the end).
    public var proxyContext = ProxyContext.tokens(256)
    public var theta0 = Theta0Recipe()
    /// The θ0s the ToV policies select from, side by side (at least one, no repeats). The first one's
    /// selections carry the policies' plain names and its θ_bas is the LESS baselines' warmup; every
    /// other one's selections of each policy that reads ToV scores are named "<policy> (<θ0> θ0)".
    public var scoringTheta0s = defaultScoringTheta0s
    public static let defaultScoringTheta0s: [ScoringTheta0] = [.pretrained, .bootstrap]
    /// The checkpoint the `imported` θ0 is read from; its SHA-256 shapes the results (the path does not).
    public var importedTheta0: ImportedTheta0? = nil
    /// `pretrain_steps` of the bootstrap θ0 (the daemon's default).
    public var bootstrapPretrainSteps = TrajectorySettings.daemonDefaults.pretrainSteps
    /// η of the base trajectory; ε = η · valLearningRateRatio.
    public var baseLearningRate = 1e-3
    public var valLearningRateRatio = 0.1
    public var proxyEpochs = 2
    public var bins = 10
    /// Dimensions of the LESS-like baseline's gradient projection.
    public var lessDimensions = 4096

    public init(dataDirectory: String, target: String, outputDirectory: String) {
        self.dataDirectory = dataDirectory
        self.target = target
        self.outputDirectory = outputDirectory
    }

    /// The options that shape a stored result, as sorted JSON. Left out: where files are, and the
    /// grid's extent (policies, LRs, seeds, arms, the θ0s after the first), which only adds or omits
    /// results whose keys say which cell they are.
    public var resultShapingJSON: [String: String] {
        var o = self
        o.dataDirectory = ""; o.outputDirectory = ""; o.cacheDirectory = ""; o.importedTheta0?.path = ""
        o.policies = []; o.learningRates = []; o.seeds = 0; o.arms = []
        // The first θ0 names the plain policies' results; the others' results carry their θ0 in the key.
        o.scoringTheta0s = Array(o.scoringTheta0s.prefix(1))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var object = try! JSONSerialization.jsonObject(with: try! encoder.encode(o)) as! [String: Any]
        // Options added since results were first stored shape them only when set: runs recorded
        // before an option existed resume (the option was then, in effect, at its default).
        if o.zvalOffTargetShare == 0 { object["zvalOffTargetShare"] = nil }
        return object.mapValues { value in
            let data = try! JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
            return String(decoding: data, as: UTF8.self)
        }
    }
}

/// A θ0 checkpoint given to `tovd evaluate --theta0-file`.
public struct ImportedTheta0: Codable, Sendable, Equatable {
    public var path: String
    public var sha256: String
    public init(path: String, sha256: String) {
        self.path = path
        self.sha256 = sha256
    }
}

/// A proxy's shape; its context is ``EvaluationOptions/proxyContext`` and its vocabulary the surrogate's.
public struct ProxyShape: Codable, Sendable, Equatable {
    public var layers: Int
    public var width: Int
    public var heads: Int
    public init(layers: Int, width: Int, heads: Int) {
        self.layers = layers
        self.width = width
        self.heads = heads
    }
}

/// The label of a model shape in reports and result keys, e.g. "2×128".
public func shapeLabel(_ config: ModelConfig) -> String { "\(config.layers)×\(config.width)" }

/// The reduced-LR proxy protocol: split, pretrain θ0 (and each proxy's θ0), score the pool with ToV and
/// the LESS-like baseline, select per policy, fine-tune each proxy on each selection at each reduced LR,
/// measure target test loss. Results are appended to `runs.jsonl` as they finish, so an interrupted
/// run resumes; `options.json` beside it records what shaped them, and a run with other settings is refused.
public final class ToVEvaluation {
    public typealias Progress = (_ stage: String, _ done: Int, _ total: Int) -> Void

    let options: EvaluationOptions
    let progress: Progress
    /// Ctrl-C for the caller to pass on: θ0 pretraining saves where it is and stops (everything else
    /// resumes from what is on disk, so the caller may simply exit).
    public let stop = StopRequest()

    public init(options: EvaluationOptions, progress: @escaping Progress = { _, _, _ in }) {
        self.options = options
        self.progress = progress
    }

    struct Row {
        var example: JSONLExample
        var dataset: String
        var isTarget: Bool
    }

    struct Split {
        var zval: [Row], test: [Row], pool: [Row], pretrain: [Row]
        /// How the rows were held out, and the overlap measured on the result.
        var heldOut: HeldOutSplit
        var overlap: HeldOutSplit.Overlap
    }

    // MARK: - Data

    /// Rows as the pipeline takes them: ids are their indices in `rows` (the pool's, or Z_val's), so
    /// U's draw and the selection hash them.
    static func rowTexts(_ rows: [Row]) -> [RowText] {
        rows.enumerated().map { RowText(id: Int64($0.offset), prompt: Array($0.element.example.prompt.utf8),
                                        response: Array($0.element.example.response.utf8), source: $0.element.example.source) }
    }

    /// The θ0 of a study that scores from one (``SharedScoringCheck``, ``ZvalSignalStudy``): the
    /// daemon's bootstrap on U, or θ0 pretrained on `pretrain` (the split's θ0 text, cached).
    func singleTheta0(kind: ScoringTheta0, pretrain: [Row], progress: @escaping Progress) throws -> Theta0.Choice {
        switch kind {
        case .bootstrap: return .bootstrap
        case .pretrained:
            let documents = PretrainingCorpus.rowsWithoutRepeats(pretrain.map { ($0.example.source ?? "", $0.example.prompt, $0.example.response) })
            let (tokenizer, model, _) = try Theta0Pretraining(recipe: options.theta0, cacheDirectory: options.cacheDirectory)
                .model(documents: documents, config: options.surrogate, tokenizer: nil, progress: progress)
            return .given(Theta0(tokenizer: tokenizer, model: model))
        default:
            throw EvaluationError("this study scores from one θ0: --theta0 bootstrap (the daemon's default) or pretrained")
        }
    }

    /// The `imported` θ0, read and checked against the SHA-256 the options were made with (a file
    /// changed between a run and its resumption would mix two θ0s in one report); nil when not asked for.
    func loadImportedTheta0() throws -> Theta0? {
        guard options.scoringTheta0s.contains(.imported) else { return nil }
        guard let imported = options.importedTheta0 else {
            throw EvaluationError("--theta0 imported needs --theta0-file (a θ0 checkpoint, e.g. from tovd pretrain)")
        }
        let bytes: Data
        do { bytes = try Data(contentsOf: URL(fileURLWithPath: imported.path)) } catch {
            throw EvaluationError("cannot read the θ0 file \(imported.path): \(error.localizedDescription)")
        }
        guard SHA256.hexDigest(of: bytes) == imported.sha256 else {
            throw EvaluationError("\(imported.path) changed since this run began (SHA-256 \(SHA256.hexDigest(of: bytes)), not \(imported.sha256)): use another --output for another θ0")
        }
        let checkpoint = try SurrogateCheckpoint.decode(Array(bytes))
        return Theta0(tokenizer: checkpoint.tokenizer, model: checkpoint.model)
    }

    /// Every subtask file of the data directory, read once: the examples and the rows the split
    /// groups (`SharedScoringCheck` splits one corpus for several targets).
    struct Corpus {
        var examples: [JSONLExample]
        var rows: [HeldOutSplit.Row]
        var files: [String]
    }

    func readCorpus() throws -> Corpus {
        let fm = FileManager.default
        guard let listing = try? fm.contentsOfDirectory(atPath: options.dataDirectory) else {
            throw EvaluationError("cannot read the data directory \(options.dataDirectory): run `tovd data fetch bigbench-ni`, or pass --data with a directory of per-subtask JSONL files")
        }
        let files = listing.filter { $0.hasSuffix(".jsonl") && $0 != "all.jsonl" }.sorted()
        var examples: [JSONLExample] = [], rows: [HeldOutSplit.Row] = []
        for file in files {
            let source = String(file.dropLast(".jsonl".count))
            for case .success(let example) in try JSONLReader(url: URL(fileURLWithPath: options.dataDirectory + "/" + file)) {
                var example = example
                // The file names the subtask (rows of other JSONL directories may lack `source`).
                example.source = source
                examples.append(example)
                rows.append(.init(source: source, dataset: BigBenchNIConverter.dataset(ofSubtask: source), prompt: example.prompt, response: example.response))
            }
        }
        return Corpus(examples: examples, rows: rows, files: files)
    }

    /// Reads every subtask file and holds the target out by dataset and by context (``HeldOutSplit``).
    func loadSplit() throws -> Split {
        try loadSplit(from: readCorpus())
    }

    /// The target's held-out split of a corpus already read.
    func loadSplit(from corpus: Corpus) throws -> Split {
        let (examples, rows) = (corpus.examples, corpus.rows)
        guard corpus.files.contains(options.target + ".jsonl") else {
            throw EvaluationError("no \(options.target).jsonl in \(options.dataDirectory); run `tovd data fetch bigbench-ni` or pick one of \(corpus.files.prefix(5).joined(separator: ", "))")
        }
        var parameters = HeldOutSplit.Parameters(target: options.target, zvalRows: options.zvalRows, testRows: options.testRows,
                                                 poolRows: options.poolRows, pretrainRows: options.pretrainRows, targetShare: options.targetShare)
        parameters.zvalOffTargetShare = options.zvalOffTargetShare
        parameters.seed = 0
        let heldOut = try HeldOutSplit(rows: rows, parameters: parameters, dataset: BigBenchNIConverter.dataset(ofSubtask:))
        let overlap = heldOut.measureOverlap(rows: rows, target: options.target, dataset: BigBenchNIConverter.dataset(ofSubtask:))
        func part(_ indices: [Int]) -> [Row] {
            indices.map { Row(example: examples[$0], dataset: rows[$0].dataset, isTarget: rows[$0].source == options.target) }
        }
        let split = Split(zval: part(heldOut.zval), test: part(heldOut.test), pool: part(heldOut.pool), pretrain: part(heldOut.pretrain),
                          heldOut: heldOut, overlap: overlap)
        guard split.pool.count > options.uSize else {
            throw EvaluationError("the pool has \(split.pool.count) rows, not more than |U| = \(options.uSize): lower --u-size or raise --pool")
        }
        return split
    }

    /// The rows `run` evaluates on: Z_val, the target's test rows and the pool (`tovd bench bootstrap` reads them too).
    public func rows() throws -> (zval: [JSONLExample], test: [JSONLExample], pool: [JSONLExample]) {
        let split = try loadSplit()
        return (split.zval.map(\.example), split.test.map(\.example), split.pool.map(\.example))
    }

    /// Mean per-row loss on the responses of `rows` laid out as θ0's pretraining text (prompt, newline,
    /// response: ``PretrainingCorpus`` writes a row so), the last context − 1 tokens, EOT not scored.
    /// The scoring layout puts a SEP token θ0 never saw before each response, so θ0's test loss in it
    /// (the "θ0 (no fine-tuning)" reference) says little about how well θ0 knows the text; this does.
    static func plainTextResponseLoss(_ model: Model, tokenizer: Tokenizer, _ rows: [JSONLExample]) -> Double {
        var sequences: [Example] = [], responseTokens: [Int] = []
        for row in rows {
            let response = tokenizer.encode(Array(row.response.utf8))
            guard !response.isEmpty else { continue }
            let text = tokenizer.encode(Array((row.prompt + "\n").utf8)) + response
            let kept = Array(text.suffix(model.config.context - 1))
            sequences.append(Example(prompt: [], response: kept, allTokens: true))
            responseTokens.append(min(response.count, kept.count - 1))
        }
        // Target i predicts token i + 1 and the last one EOT, so a row's response is predicted by the
        // `count` targets before the last.
        let losses = model.losses(sequences, perToken: true)
        let means = zip(losses, responseTokens).compactMap { loss, count -> Double? in
            guard count > 0 else { return nil }
            let targets = loss.perToken.dropLast().suffix(count)
            return targets.reduce(0) { $0 + Double($1) } / Double(count)
        }
        return means.reduce(0, +) / Double(max(means.count, 1))
    }

    // MARK: - Run

    public func run(commandLine: String) throws -> EvaluationReport {
        let started = Date()
        try FileManager.default.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
        var ledger = try RunLedger(directory: options.outputDirectory, shaping: options.resultShapingJSON)
        progress("loading data", 0, 1)
        let split = try loadSplit()

        let documents = PretrainingCorpus.rowsWithoutRepeats(split.pretrain.map { ($0.example.source ?? "", $0.example.prompt, $0.example.response) })
        let pretraining = Theta0Pretraining(recipe: options.theta0, cacheDirectory: options.cacheDirectory, stop: stop)
        let (tokenizer, theta0, theta0Summary) = try pretraining.model(documents: documents, config: options.surrogate, tokenizer: nil, progress: progress)

        func examples(_ rows: [Row]) -> [Example] {
            rows.map { tokenizer.example(prompt: Array($0.example.prompt.utf8), response: Array($0.example.response.utf8)) }
        }
        let poolExamples = examples(split.pool), zvalExamples = examples(split.zval), testExamples = examples(split.test)
        let poolTexts = Self.rowTexts(split.pool), zvalTexts = Self.rowTexts(split.zval)
        let pretrainedTheta0 = Theta0(tokenizer: tokenizer, model: theta0)
        guard let primaryTheta0 = options.scoringTheta0s.first, Set(options.scoringTheta0s).count == options.scoringTheta0s.count else {
            throw EvaluationError("name each θ0 of --theta0 once (\(ScoringTheta0.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let importedTheta0 = try loadImportedTheta0()
        // The same recipe, corpus and tokenizer as the pretrained θ0, in the scoring layout.
        var scoringLayoutTheta0: Theta0?
        if options.scoringTheta0s.contains(.pretrainedScoringLayout) {
            var recipe = options.theta0
            recipe.layout = .scoring
            let (_, model, _) = try Theta0Pretraining(recipe: recipe, cacheDirectory: options.cacheDirectory, stop: stop)
                .model(documents: documents, config: options.surrogate, tokenizer: tokenizer, progress: progress)
            scoringLayoutTheta0 = Theta0(tokenizer: tokenizer, model: model)
        }
        /// Where each θ0 of --theta0 comes from for the pipeline.
        func choice(_ theta0: ScoringTheta0) -> Theta0.Choice {
            switch theta0 {
            case .pretrained: .given(pretrainedTheta0)
            case .bootstrap: .bootstrap
            case .imported: .given(importedTheta0!)
            case .pretrainedScoringLayout: .given(scoringLayoutTheta0!)
            case .bootstrapLong, .bootstrapPool, .bootstrapPoolLong:
                .bootstrapVariant(theta0.bootstrapVariant(pretrainSteps: options.bootstrapPretrainSteps)!)
            }
        }
        // The LESS baselines take their gradients at θ_bas of the first θ0, on rows in the pretrained θ0's
        // tokens; the length-matched baseline compares the first θ0's row lengths with Z_val's in those tokens.
        guard primaryTheta0 == .pretrained || !options.policies.contains(where: { $0.lessFeature != nil || $0 == .randomLengthMatched }) else {
            throw EvaluationError("the LESS and length-matched baselines need --theta0 to start with pretrained (e.g. pretrained,bootstrap)")
        }
        // The target's whole rows in tokens (prompt + SEP + response + EOT), for the p95 proxy context.
        let targetLengths = (zvalExamples + testExamples).map { Double($0.prompt.count + $0.response.count + 2) }
        let proxyContext: Int = switch options.proxyContext {
        case .tokens(let n): n
        case .targetP95: max(16, Int(Stats.quantile(targetLengths, 0.95).rounded(.up)))
        }
        var proxies: [(label: String, config: ModelConfig, theta0: Model, summary: Theta0Summary)] = []
        for shape in options.proxies {
            let config = ModelConfig(layers: shape.layers, width: shape.width, heads: shape.heads, context: proxyContext, vocabSize: options.surrogate.vocabSize)
            let (_, model, summary) = try pretraining.model(documents: documents, config: config, tokenizer: tokenizer, progress: progress)
            proxies.append((shapeLabel(config), config, model, summary))
        }
        let targetDataset = split.heldOut.targetDataset
        let n = Budget.fraction(options.budgetFraction).rowCount(eligible: split.pool.count - options.uSize)

        func testLoss(_ model: Model) -> Double {
            let losses = model.losses(testExamples)
            return losses.reduce(0) { $0 + Double($1.meanNLL) } / Double(max(losses.count, 1))
        }
        func fineTuned(_ theta0: Model, _ subset: [Example], lr: Double, seed: UInt64) -> Double {
            let proxy = theta0.copy()
            var training = TrainingOptions()
            training.epochs = options.proxyEpochs
            training.learningRate = Float(lr)
            training.seed = seed
            training.weightDecay = 0
            proxy.train(on: subset, options: training, progress: nil)
            return testLoss(proxy)
        }

        // References: a uniform guess and each proxy's θ0 as is (θ0 + Z_val alone is an arm of the grid).
        var references = [EvaluationReport.Reference(name: "uniform guess (ln V)", testLoss: log(Double(options.surrogate.vocabSize)))]
        for proxy in proxies {
            references.append(.init(name: "θ0 (no fine-tuning)", proxy: proxy.label,
                                    testLoss: try ledger.value("ref/\(proxy.label)/theta0") { testLoss(proxy.theta0) }))
        }

        // The model-free baselines' costs as first measured (a resume recomputes their cheap results but
        // keeps the costs, like the stored scores').
        var baselineCosts = BaselineCosts.load(directory: options.outputDirectory)
        // DSIR needs no model: its log importance weights are fitted once per pool and target.
        let dsirWeights: [Double]?
        var dsirCost: EvaluationReport.Cost?
        if options.policies.contains(.dsir) {
            let meter = ResourceMeter()
            func text(_ row: Row) -> String { row.example.prompt + "\n" + row.example.response }
            let dsir = DSIR(target: split.zval.map(text), pool: split.pool.map(text))
            dsirWeights = split.pool.map { dsir.logWeight(text($0)) }
            let measured = meter.finish(method: "DSIR", seed: 0, rows: split.pool.count, bytesStored: split.pool.count * MemoryLayout<Double>.size)
            dsirCost = try baselineCosts.cost("DSIR", directory: options.outputDirectory) { measured }
        } else {
            dsirWeights = nil
        }
        let zvalResponseLengths = zvalExamples.map { min($0.response.count, options.surrogate.context - 1) }

        // Every seed's scores and every policy's selection first (scores are stored per seed, so a
        // resumed run reads them back), then the fine-tunes, the primary arm first.
        var enrichment: [EvaluationReport.Enrichment] = []
        var costs: [EvaluationReport.Cost] = dsirCost.map { [$0] } ?? []
        var histogramScores: [Double] = []
        var lengths: [EvaluationReport.LengthDistribution] = []
        // Every selection fine-tuned on: each policy from the first θ0's scores, then each policy that
        // reads ToV scores again from every other θ0's; each goes through every arm, proxy and LR.
        let selectors: [(label: String, policy: EvaluationPolicy, theta0: ScoringTheta0)] =
            options.policies.map { ($0.rawValue, $0, primaryTheta0) }
            + options.scoringTheta0s.dropFirst().flatMap { theta0 in
                options.policies.filter(\.readsToVScores).map { (theta0.label($0), $0, theta0) }
            }
        var selections: [[(label: String, ids: [Int64])]] = []
        let features = options.policies.compactMap(\.lessFeature)
        let crossFitFolds = Set(options.policies.compactMap(\.crossFitFolds)).sorted()
        for seed in 0..<options.seeds {
            // A LESS feature or cross-fitted ToV the stored seed lacks is added to it: ToV is trained again
            // for θ_bas, but its stored rows (those finished fine-tunes selected from) are kept.
            var scored = SeedScores.load(directory: options.outputDirectory, seed: seed)
            func missingFolds(_ theta0: ScoringTheta0) -> [Int] {
                crossFitFolds.filter { scored?.crossFitted[SeedScores.crossFitKey(theta0, folds: $0)] == nil }
            }
            if scored == nil || features.contains(where: { scored?.less[$0.rawValue] == nil }) || !missingFolds(primaryTheta0).isEmpty {
                let folds = missingFolds(primaryTheta0)
                let tov = scores(seed: UInt64(seed), theta0: primaryTheta0, from: choice(primaryTheta0), pool: poolTexts, zval: zvalTexts,
                                 crossFitFolds: folds)
                var computed = scored ?? SeedScores(tov: tov.rows, tovCost: tov.cost)
                for feature in features where computed.less[feature.rawValue] == nil {
                    computed.less[feature.rawValue] = lessScores(seed: UInt64(seed), feature: feature, base: tov.base, basSeconds: tov.basSeconds,
                                                                 rows: computed.tov, pool: poolExamples, zval: zvalExamples)
                }
                for (folds, fitted) in tov.crossFitted { computed.crossFitted[SeedScores.crossFitKey(primaryTheta0, folds: folds)] = fitted }
                try computed.save(directory: options.outputDirectory, seed: seed)
                scored = computed
            }
            for other in options.scoringTheta0s.dropFirst() where scored!.byTheta0[other.rawValue] == nil || !missingFolds(other).isEmpty {
                let tov = scores(seed: UInt64(seed), theta0: other, from: choice(other), pool: poolTexts, zval: zvalTexts,
                                 crossFitFolds: missingFolds(other))
                if scored!.byTheta0[other.rawValue] == nil { scored!.byTheta0[other.rawValue] = SeedScores.Less(rows: tov.rows, cost: tov.cost) }
                for (folds, fitted) in tov.crossFitted { scored!.crossFitted[SeedScores.crossFitKey(other, folds: folds)] = fitted }
                try scored!.save(directory: options.outputDirectory, seed: seed)
            }
            let stored = scored!
            costs.append(stored.tovCost)
            let rows = stored.tov
            for feature in features { costs.append(stored.less[feature.rawValue]!.cost) }
            for other in options.scoringTheta0s.dropFirst() { costs.append(stored.byTheta0[other.rawValue]!.cost) }
            for theta0 in options.scoringTheta0s {
                for folds in crossFitFolds { costs.append(stored.crossFitted[SeedScores.crossFitKey(theta0, folds: folds)]!.cost) }
            }
            if seed == 0 { histogramScores = rows.map(\.score) }
            var perSelector: [(label: String, ids: [Int64])] = []
            // score_dsir's weights as the pipeline computes them (scores stored before it did lack them):
            // Z_val's n-grams against U's, U being this seed's draw. Once per seed for every score_dsir
            // selection, as every θ0 scores the same rows.
            let importanceOf: [Int64: Double]? = options.policies.contains(where: { $0 == .selection(.scoreDSIR) || $0 == .diverse(.scoreDSIR) }) ? {
                let uIDs = Set(UDraw.draw(ids: poolTexts.map(\.id), size: options.uSize, seed: Int64(seed)))
                let model = NgramImportance(zval: zvalTexts, u: poolTexts.filter { uIDs.contains($0.id) })
                return Dictionary(uniqueKeysWithValues: rows.map { ($0.id, model.logWeight(poolTexts[Int($0.id)])) })
            }() : nil
            let clusters = options.policies.contains(where: { if case .diverse = $0 { true } else { false } })
                ? ClusterQuota(clusterOf: Dictionary(uniqueKeysWithValues: rows.map { ($0.id, ClusterQuota.cluster(poolTexts[Int($0.id)])) }))
                : nil
            func weighed(_ tovRows: [ScoredRow], for p: Policy) -> [ScoredRow] {
                p != .scoreDSIR ? tovRows : tovRows.map { row -> ScoredRow in
                    var row = row
                    row.importance = importanceOf![row.id]!
                    return row
                }
            }
            for (label, policy, scoringTheta0) in selectors {
                // The ToV policies select from their θ0's scores; the scored rows (outside U) are the same
                // for every θ0, as U's draw hashes only the seed and the ids.
                let tovRows = scoringTheta0 == primaryTheta0 ? rows : stored.byTheta0[scoringTheta0.rawValue]!.rows
                let meter = ResourceMeter()
                let chosen: [Int64]
                switch policy {
                case .selection(let p), .diverse(let p):
                    // A +diverse policy takes its plain policy's seed, so the two differ only by the quota.
                    let selectionSeed = policy == .random ? SeedStream.randomBaseline(seed) : SeedStream.policy(seed)
                    let quota = policy == .selection(p) ? nil : clusters!
                    chosen = Selection.select(weighed(tovRows, for: p), settings: SelectionSettings(
                        budget: .rows(n), policy: p, scoreFunction: options.scoreFunction, method: options.method, bins: options.bins,
                        seed: selectionSeed), clusterQuota: quota).ids
                case .scoreShare(let share):
                    chosen = Selection.select(tovRows, settings: SelectionSettings(
                        budget: .rows(n), policy: .scoreRandom, scoreFunction: options.scoreFunction, method: options.method,
                        bins: options.bins, seed: SeedStream.policy(seed), scoreShare: share)).ids
                case .crossFitted(let folds):
                    chosen = Selection.select(stored.crossFitted[SeedScores.crossFitKey(scoringTheta0, folds: folds)]!.rows, settings: SelectionSettings(
                        budget: .rows(n), policy: .scoreRandom, scoreFunction: options.scoreFunction, method: options.method,
                        bins: options.bins, seed: SeedStream.policy(seed))).ids
                case .less, .lessAdam:
                    // LESS ranks by gradient similarity; top-n within the same length bins as score_only.
                    chosen = Selection.select(stored.less[policy.lessFeature!.rawValue]!.rows,
                                              settings: SelectionSettings(budget: .rows(n), policy: .scoreOnly, scoreFunction: options.scoreFunction,
                                                                          method: options.method, bins: options.bins, seed: SeedStream.policy(seed))).ids
                case .dsir:
                    chosen = DSIR.resample(logWeights: rows.map { dsirWeights![Int($0.id)] }, n: n, seed: UInt64(bitPattern: SeedStream.dsir(seed)))
                        .map { rows[$0].id }
                case .oracle:
                    let own = rows.filter { split.pool[Int($0.id)].dataset == targetDataset }
                    chosen = Selection.select(own, settings: SelectionSettings(budget: .rows(min(n, own.count)), policy: .random,
                                                                              seed: SeedStream.randomBaseline(seed))).ids
                case .randomLengthMatched:
                    chosen = LengthMatchedRandom.select(poolLengths: rows.map(\.length), targetLengths: zvalResponseLengths, n: n, bins: options.bins,
                                                        seed: UInt64(bitPattern: SeedStream.lengthMatched(seed))).map { rows[$0].id }
                    if seed == 0 {
                        let measured = meter.finish(method: "random (length-matched)", seed: 0, rows: rows.count, bytesStored: 0)
                        costs.append(try baselineCosts.cost("random (length-matched)", directory: options.outputDirectory) { measured })
                    }
                }
                perSelector.append((label, chosen))
                if seed == 0 {
                    let sizes: [Int]? = clusters.map { quota in
                        let grouped: [UInt64: [Int64]] = Dictionary(grouping: chosen) { quota.clusterOf[$0] ?? 0 }
                        return grouped.values.map(\.count)
                    }
                    let largest: Int? = sizes.map { $0.max() ?? 0 }
                    enrichment.append(.init(policy: label,
                                            targetInSelection: chosen.filter { split.pool[Int($0)].dataset == targetDataset }.count,
                                            selection: chosen.count,
                                            targetInPool: rows.filter { split.pool[Int($0.id)].dataset == targetDataset }.count,
                                            pool: rows.count,
                                            subtaskInSelection: chosen.filter { split.pool[Int($0)].isTarget }.count,
                                            subtaskInPool: rows.filter { split.pool[Int($0.id)].isTarget }.count,
                                            clusters: sizes?.count, largestCluster: largest))
                    if lengths.isEmpty {
                        lengths.append(.init(name: "pool", lengths: rows.map { Double($0.length) }, edges: Self.lengthEdges))
                        lengths.append(.init(name: "Z_val", lengths: zvalResponseLengths.map(Double.init), edges: Self.lengthEdges))
                    }
                    // In the first θ0's tokens for every selection, so the histograms compare.
                    let selected = Set(chosen)
                    lengths.append(.init(name: "selected (\(label))",
                                         lengths: rows.filter { selected.contains($0.id) }.map { Double($0.length) }, edges: Self.lengthEdges))
                }
            }
            selections.append(perSelector)
        }

        var runs: [EvaluationReport.Run] = []
        let arms = options.arms
        let totalRuns = arms.count * proxies.count * options.seeds * options.learningRates.count * selectors.count
            + (arms.contains(.withZval) ? proxies.count * options.seeds * options.learningRates.count : 0)
        for arm in arms {
            for proxy in proxies {
                for seed in 0..<options.seeds {
                    // Every arm and selection of a seed shares the proxy's data-order seed: the design pairs by seed.
                    let fineTuneSeed = SeedStream.fineTune(seed)
                    for lr in options.learningRates {
                        if arm == .withZval {
                            let loss = try ledger.value("run/\(proxy.label)/zval_only/\(lr)/\(seed)") {
                                fineTuned(proxy.theta0, zvalExamples, lr: lr, seed: fineTuneSeed)
                            }
                            runs.append(.init(policy: ProtocolAnalysis.zvalOnly, learningRate: lr, seed: UInt64(seed), testLoss: loss,
                                              proxy: proxy.label, scoringSeed: UInt64(seed), arm: arm.rawValue))
                            progress("proxy fine-tuning", runs.count, totalRuns)
                        }
                        for (label, chosen) in selections[seed] {
                            let subset = chosen.map { poolExamples[Int($0)] } + (arm == .withZval ? zvalExamples : [])
                            let loss = try ledger.value("run/\(proxy.label)/\(arm.rawValue)/\(label)/\(lr)/\(seed)") {
                                fineTuned(proxy.theta0, subset, lr: lr, seed: fineTuneSeed)
                            }
                            runs.append(.init(policy: label, learningRate: lr, seed: UInt64(seed), testLoss: loss,
                                              proxy: proxy.label, scoringSeed: UInt64(seed), arm: arm.rawValue))
                            progress("proxy fine-tuning", runs.count, totalRuns)
                        }
                    }
                }
            }
        }

        costs = CostModel.annotate(costs, surrogate: theta0.parameterCount, context: options.surrogate.context,
                                   meanTokens: Stats.mean(poolExamples.map { Double(min($0.prompt.count + $0.response.count + 2, options.surrogate.context)) }),
                                   uSize: options.uSize, zvalRows: split.zval.count, epochs: options.epochs, lessDimensions: options.lessDimensions,
                                   scoredRows: split.pool.count - options.uSize,
                                   bootstrapPretrainTokens: bootstrapPretrainTokens())
        let targetInPool = split.pool.filter(\.isTarget).count
        var settings: [String: String] = [
            "L (scoring epochs)": "\(options.epochs)", "method": options.method.rawValue, "score_fn": options.scoreFunction.rawValue,
            "|U|": "\(options.uSize)", "surrogate": "\(shapeLabel(options.surrogate)), ctx \(options.surrogate.context), vocab \(options.surrogate.vocabSize), scoring in \(ScoringPrecision.preferred.rawValue) (the daemon's default here)",
            "proxies": proxies.map { "\($0.label), ctx \($0.config.context)" }.joined(separator: "; ")
                + (options.proxyContext == .targetP95 ? " (ctx = the target's p95 row length)" : ""),
            "target rows p95 (tokens)": String(format: "%.0f", Stats.quantile(targetLengths, 0.95)),
            "η (base)": "\(options.baseLearningRate)", "ε/η": "\(options.valLearningRateRatio)", "proxy epochs": "\(options.proxyEpochs)",
            "bins": "\(options.bins)", "target dataset": targetDataset,
            "target task in pool": targetInPool > 0 ? "yes: \(targetInPool) rows (\(String(format: "%.1f", 100 * Double(targetInPool) / Double(split.pool.count))) %), held out from Z_val and test by context" : "no (transfer)",
            "arms": arms.map { $0 == .withZval ? "selection + Z_val (primary), Z_val alone" : "selection alone" }.joined(separator: "; "),
            "seeds": "\(options.seeds): seed s is the daemon's seed setting for U and the trajectories; every θ0's ToV selections use the policies' stream s·1000 (a daemon's random half hashes s itself); the random baseline's draw (its own stream), DSIR's Gumbel noise and the length-matched draw each use another stream; every arm and selection of seed s shares the proxy's data order",
            "ToV pipeline": "the daemon's (ToVPipeline): U drawn by md5(seed:u:id), θ_bas/θ_val epochs seeded seed + l and seed + 1000 + l",
            "θ0 of the ToV selections": options.scoringTheta0s.enumerated().map { index, theta0 in
                let which = switch theta0 {
                case .pretrained: "pretrained (the θ0 (surrogate) \(shapeLabel(options.surrogate)) below)"
                case .bootstrap: "bootstrap (the daemon's default: tokenizer learned on U, \(options.bootstrapPretrainSteps) steps on U at 3η)"
                case .imported: "imported (the checkpoint \(options.importedTheta0.map { "\(URL(fileURLWithPath: $0.path).lastPathComponent), SHA-256 \($0.sha256)" } ?? "?"), as `tovd base import` would store it)"
                case .pretrainedScoringLayout: "pretrained-scoring (the pretrained θ0's recipe, rows and tokenizer in the scoring layout: prompt, separator, response, as `tovd pretrain` makes it by default)"
                case .bootstrapLong, .bootstrapPool, .bootstrapPoolLong:
                    {
                        let v = theta0.bootstrapVariant(pretrainSteps: options.bootstrapPretrainSteps)!
                        let corpus = v.corpus == .u ? "U" : "the whole pool (U and the scored rows, de-duplicated)"
                        return "\(theta0.rawValue) (a candidate bootstrap: tokenizer learned on \(corpus), \(v.pretrainSteps) steps on it at 3η)"
                    }()
                }
                return index == 0 ? "\(which) for the plain policy names" : "\(which) for \"<policy> (\(theta0.rawValue) θ0)\""
            }.joined(separator: "; ") + "; every selection goes through the same arms, proxies and LRs",
        ]
        if split.heldOut.zvalOffTarget > 0 {
            settings["Z_val off-target"] = "\(split.heldOut.zvalOffTarget) of \(split.zval.count) rows from other datasets (outside the pool and θ0's text): a noisy Z_val"
        }
        if options.policies.contains(.less) { settings["LESS-like projection"] = "\(options.lessDimensions) dims (count sketch of every parameter's Adam first-step direction at θ_bas)" }
        if options.policies.contains(.lessAdam) { settings["less_adam projection"] = "\(options.lessDimensions) dims (count sketch of every parameter's gradient at θ_bas: AdamW-preconditioned by θ_bas's optimizer state for pool rows, plain for Z_val; score = mean over Z_val rows of the cosine)" }
        if options.policies.contains(.dsir) { settings["DSIR"] = "hashed unigrams + bigrams (10,000 buckets) of prompt + response; bag-of-ngrams of Z_val vs the pool; Gumbel-top-k importance resampling over the scored rows" }
        for (label, summary, model) in [("θ0 (surrogate) \(shapeLabel(options.surrogate))", theta0Summary, theta0)] + proxies.map({ ("proxy θ0 \($0.label) ctx \($0.config.context)", $0.summary, $0.theta0) }) {
            let s = summary
            settings[label] = "\(s.steps) steps\(s.stoppedEarly ? " (held-out early stop)" : " (step budget)") on \(s.trainingWindows) windows / \(s.trainingTokens) tokens "
                + "of \(documents.count) de-duplicated rows outside the pool and the target's dataset; held-out loss \(String(format: "%.3f", s.bestHeldOutLoss)); "
                + "test responses as plain text \(String(format: "%.3f", Self.plainTextResponseLoss(model, tokenizer: tokenizer, split.test.map(\.example)))); "
                + "\(Int(s.wallSeconds)) s\(s.resumedAtStep.map { " (resumed at step \($0))" } ?? "")\(s.cached ? " (cached)" : "")"
        }
        let setup = EvaluationReport.Setup(
            title: "ToV selection vs baselines on \(options.target)", targetSource: options.target,
            poolRows: split.pool.count, validationRows: split.zval.count, testRows: split.test.count, budgetRows: n,
            settings: settings)
        var report = EvaluationReport(
            setup: setup, runs: runs, references: references,
            scoreHistogram: Histogram(values: histogramScores, bins: 30),
            lengths: lengths, enrichment: enrichment, costs: costs, wallTimeSeconds: Date().timeIntervalSince(started), commandLine: commandLine)
        report.heldOut = HeldOutReport(split.heldOut, overlap: split.overlap)
        report.analysis = ProtocolAnalysis(report)
        try write(report)
        return report
    }

    static let lengthEdges: [Double] = [0, 2, 4, 8, 16, 32, 64, 128, 256, 512]

    /// Writes the one committed format, `report.json`; Markdown and HTML are rendered from it on demand
    /// (`tovd evaluate --render report.json --format md|html`).
    func write(_ report: EvaluationReport) throws {
        try report.jsonData().write(to: URL(fileURLWithPath: options.outputDirectory + "/report.json"))
    }

    // MARK: - ToV scores

    struct ToVScores {
        var rows: [ScoredRow]
        /// θ_bas^L, where the LESS-like baseline takes its gradients.
        var base: Model
        var basSeconds: Double
        var cost: EvaluationReport.Cost
        /// Cross-fitted ToV's scores and cost by number of folds, when asked for.
        var crossFitted: [Int: SeedScores.Less] = [:]
    }

    /// The pipeline's settings for scoring seed `seed`: the seed is the daemon's `seed` setting, so U's
    /// draw, a bootstrap θ0 and every epoch's order are what a daemon with these settings would make.
    func trajectorySettings(seed: UInt64) -> TrajectorySettings {
        TrajectorySettings(epochs: options.epochs, learningRate: options.baseLearningRate, valLearningRateRatio: options.valLearningRateRatio,
                           pretrainSteps: options.bootstrapPretrainSteps, seed: Int64(seed))
    }

    /// Tokens each bootstrap θ0 of --theta0 is pretrained on, by its cost's method name, "ToV (<θ0> θ0)"
    /// (``scores(seed:theta0:from:pool:zval:)`` names them so).
    func bootstrapPretrainTokens() -> [String: Double] {
        var tokens: [String: Double] = [:]
        for theta0 in options.scoringTheta0s {
            let steps: Int
            if theta0 == .bootstrap { steps = options.bootstrapPretrainSteps }
            else if let variant = theta0.bootstrapVariant(pretrainSteps: options.bootstrapPretrainSteps) { steps = variant.pretrainSteps }
            else { continue }
            tokens["ToV (\(theta0.rawValue) θ0)"] = Double(steps * TrainingOptions().batchTokens)
        }
        return tokens
    }

    /// φ, ψ and length for every pool row outside U (row ids are pool indices), by the daemon's own
    /// pipeline (ToVPipeline's ``PipelineRun``) from the chosen θ0.
    func scores(seed: UInt64, theta0: ScoringTheta0, from choice: Theta0.Choice, pool: [RowText], zval: [RowText],
                crossFitFolds: [Int] = []) -> ToVScores {
        let meter = ResourceMeter()
        var pipeline = PipelineRun(model: options.surrogate, settings: trajectorySettings(seed: seed), uSize: options.uSize,
                                   method: options.method, scoreFunction: options.scoreFunction)
        pipeline.crossFitFolds = crossFitFolds
        let named = theta0 == .pretrained ? "" : " (\(theta0.rawValue) θ0)"
        pipeline.progress = { [progress] stage, done, total in
            switch stage {
            case .pretraining: progress("seed \(seed): \(theta0.rawValue) θ0 (pretraining)", done, total)
            case .scoring: progress("seed \(seed): ToV scoring\(named)", done, total)
            case .crossFitting: progress("seed \(seed): cross-fitted ToV scoring\(named)", done, total)
            }
        }
        let result = pipeline.run(pool: pool, zval: zval, theta0: choice)
        // What ToV keeps per scored row: L base losses, L θ_val losses and ψ, as Float32.
        let stored = result.rows.count * (2 * options.epochs + 1) * MemoryLayout<Float>.size
        var cost = meter.finish(method: "ToV\(named)", seed: seed, rows: result.rows.count, bytesStored: stored)
        cost.wallSeconds -= result.crossFitSeconds
        if choice.isBootstrap { cost.note = "includes θ0's bootstrap pretraining (\(String(format: "%.1f", result.theta0Seconds)) s)" }
        // Cross-fitted ToV's cost: θ0 and θ_bas as plain ToV's (shared), plus its folds.
        var crossFitted: [Int: SeedScores.Less] = [:]
        for folds in crossFitFolds {
            var foldCost = cost
            foldCost.method = "ToV cross-fitted, \(folds) folds\(named)"
            foldCost.wallSeconds = result.theta0Seconds + result.baseTrainingSeconds + result.crossFitSeconds / Double(crossFitFolds.count)
            foldCost.bytesStored = result.rows.count * (2 * folds + 1) * MemoryLayout<Float>.size
            guard let rows = result.targets[0].crossFitted[folds] else {
                foldCost.note = "Z_val is a single context: nothing to hold out, plain ToV's scores"
                crossFitted[folds] = SeedScores.Less(rows: result.rows, cost: foldCost)
                continue
            }
            foldCost.note = "θ0\(choice.isBootstrap ? " (bootstrap)" : "") and θ_bas as plain ToV's, then \(folds) folds: a pass over Z_val at η and a nudge at ε each, 2 forward passes per row"
            crossFitted[folds] = SeedScores.Less(rows: rows, cost: foldCost)
        }
        return ToVScores(rows: result.rows, base: result.finalBase, basSeconds: result.baseTrainingSeconds, cost: cost, crossFitted: crossFitted)
    }

    /// One seed's ToV scores and, for each LESS feature the run's policies use, its scores, with the
    /// cost of computing each; `scores-seed<N>.json` in the output directory, which `options.json`
    /// already ties to the settings that shaped them.
    struct SeedScores: Codable {
        struct Less: Codable {
            var rows: [ScoredRow]
            var cost: EvaluationReport.Cost
        }
        var tov: [ScoredRow]
        var tovCost: EvaluationReport.Cost
        /// By ``LessScorer/Feature`` raw value.
        var less: [String: Less] = [:]
        /// ToV's scores from each θ0 after the run's first (``ScoringTheta0`` raw value).
        var byTheta0: [String: Less] = [:]
        /// Cross-fitted ToV's scores by ``crossFitKey(_:folds:)``.
        var crossFitted: [String: Less] = [:]

        static func crossFitKey(_ theta0: ScoringTheta0, folds: Int) -> String { "\(theta0.rawValue)@\(folds)" }

        init(tov: [ScoredRow], tovCost: EvaluationReport.Cost) {
            self.tov = tov
            self.tovCost = tovCost
        }

        enum CodingKeys: String, CodingKey {
            case tov, tovCost, lessByFeature, tovByTheta0, crossFitted
            /// Files written before `less_adam` held the sign feature's scores under these two keys.
            case less, lessCost
        }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            tov = try c.decode([ScoredRow].self, forKey: .tov)
            tovCost = try c.decode(EvaluationReport.Cost.self, forKey: .tovCost)
            if let byFeature = try c.decodeIfPresent([String: Less].self, forKey: .lessByFeature) {
                less = byFeature
            } else if let rows = try c.decodeIfPresent([ScoredRow].self, forKey: .less),
                      let cost = try c.decodeIfPresent(EvaluationReport.Cost.self, forKey: .lessCost) {
                less = [LessScorer.Feature.sign.rawValue: Less(rows: rows, cost: cost)]
            }
            byTheta0 = try c.decodeIfPresent([String: Less].self, forKey: .tovByTheta0) ?? [:]
            crossFitted = try c.decodeIfPresent([String: Less].self, forKey: .crossFitted) ?? [:]
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(tov, forKey: .tov)
            try c.encode(tovCost, forKey: .tovCost)
            try c.encode(less, forKey: .lessByFeature)
            try c.encode(byTheta0, forKey: .tovByTheta0)
            try c.encode(crossFitted, forKey: .crossFitted)
        }

        static func path(directory: String, seed: Int) -> String { directory + "/scores-seed\(seed).json" }

        /// nil when absent or unreadable (an interrupted write): the seed is scored again.
        static func load(directory: String, seed: Int) -> SeedScores? {
            guard let data = FileManager.default.contents(atPath: path(directory: directory, seed: seed)) else { return nil }
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            return try? decoder.decode(SeedScores.self, from: data)
        }

        func save(directory: String, seed: Int) throws {
            let encoder = JSONEncoder()
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            try encoder.encode(self).write(to: URL(fileURLWithPath: Self.path(directory: directory, seed: seed)), options: .atomic)
        }
    }

    // MARK: - LESS-like scores

    /// Mean cosine of each scored row's projected gradient feature at θ_bas^L with each Z_val row's
    /// (``LessScorer/scores(pool:zval:)``).
    /// Its cost counts θ_bas's training (LESS's warmup) plus the gradient features; the features of every
    /// row are kept, as LESS keeps its gradient datastore.
    func lessScores(seed: UInt64, feature: LessScorer.Feature, base: Model, basSeconds: Double, rows: [ScoredRow], pool: [Example],
                    zval: [Example]) -> SeedScores.Less {
        let meter = ResourceMeter()
        let scorer = LessScorer(parameterCount: base.parameterCount, dimensions: options.lessDimensions, seed: 0x1e55 &+ seed)
        let name = feature == .sign ? "LESS-like" : "LESS (Adam)"
        let zvalFeatures = scorer.features(zval, at: base, feature: feature, validation: true)
        let poolFeatures = scorer.features(rows.map { pool[Int($0.id)] }, at: base, feature: feature, validation: false) { done in
            self.progress("seed \(seed): \(name) gradients", done, rows.count)
        }
        let similarity = LessScorer.scores(pool: poolFeatures, zval: zvalFeatures)
        let scored = zip(rows, similarity).map { row, s in ScoredRow(id: row.id, score: s, uncertainty: row.uncertainty, length: row.length) }
        var cost = meter.finish(method: name, seed: seed, rows: rows.count,
                                bytesStored: (poolFeatures.count + zvalFeatures.count) * scorer.projection.bytesPerRow)
        cost.wallSeconds += basSeconds
        cost.note = "includes θ_bas training (\(String(format: "%.1f", basSeconds)) s, shared with ToV)"
        return SeedScores.Less(rows: scored, cost: cost)
    }
}

/// Finished results by key, in `runs.jsonl`; computing a key that is there returns the stored value.
/// `options.json` records the options that shaped them: reusing the directory with other ones would
/// silently return old numbers, so it is refused.
struct RunLedger {
    let path: String
    var values: [String: Double] = [:]

    init(directory: String, shaping: [String: String]) throws {
        path = directory + "/runs.jsonl"
        let optionsPath = directory + "/options.json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains("\"key\"") {
            guard let data = FileManager.default.contents(atPath: optionsPath),
                  var recorded = try? JSONDecoder().decode([String: String].self, from: data) else {
                throw EvaluationError("\(path) holds results but \(optionsPath) does not say what shaped them (an older tovd evaluate): use another --output or delete \(directory)")
            }
            // Directories written before the θ0s after the first left the shaping options record them all.
            if let list = recorded["scoringTheta0s"], let θ0s = try? JSONDecoder().decode([String].self, from: Data(list.utf8)) {
                recorded["scoringTheta0s"] = String(decoding: try JSONEncoder().encode(Array(θ0s.prefix(1))), as: UTF8.self)
            }
            let differing = Set(recorded.keys).union(shaping.keys).filter { recorded[$0] != shaping[$0] }.sorted()
            guard differing.isEmpty else {
                let detail = differing.map { "\($0): \(recorded[$0] ?? "unset") → \(shaping[$0] ?? "unset")" }.joined(separator: "; ")
                throw EvaluationError("\(directory) holds results of other settings (\(detail)): use another --output, or delete \(path) to start over")
            }
            for line in text.split(separator: "\n") {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let key = object["key"] as? String, let value = object["test_loss"] as? Double else { continue }
                values[key] = value
            }
        } else {
            FileManager.default.createFile(atPath: path, contents: nil)
        }
        try encoder.encode(shaping).write(to: URL(fileURLWithPath: optionsPath))
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
