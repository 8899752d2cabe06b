import Foundation

/// Everything `tovd evaluate` measured, independent of how it is rendered (``MarkdownReport``, ``HTMLReport``).
///
/// The grid is policies × learning rates × seeds → target test log-loss of a proxy fine-tuned from θ0 on the
/// policy's selection. Reference rows put those numbers in context (θ0 untouched; θ0 fine-tuned on Z_val alone).
public struct EvaluationReport: Codable, Sendable, Equatable {
    /// One proxy fine-tune.
    public struct Run: Codable, Sendable, Equatable {
        public var policy: String
        public var learningRate: Double
        public var seed: UInt64
        /// Mean per-token negative log-likelihood of the target test responses.
        public var testLoss: Double
        /// Shape of the fine-tuned proxy ("2×128"); nil in reports made before proxies of other sizes.
        public var proxy: String?
        /// The seed of U, the trajectories and the selection; `seed` above also counts the random draw.
        public var scoringSeed: UInt64?
        public var draw: Int?
        /// ``EvaluationArm`` raw value: "with_zval" (selection + Z_val; policy "zval_only" is Z_val alone) or
        /// "alone"; nil in reports of the old protocol.
        public var arm: String?

        public init(policy: String, learningRate: Double, seed: UInt64, testLoss: Double,
                    proxy: String? = nil, scoringSeed: UInt64? = nil, draw: Int? = nil, arm: String? = nil) {
            self.policy = policy
            self.learningRate = learningRate
            self.seed = seed
            self.testLoss = testLoss
            self.proxy = proxy
            self.scoringSeed = scoringSeed
            self.draw = draw
            self.arm = arm
        }
    }

    /// What one scoring method cost for one seed: the paper compares ToV's cost with LESS's.
    public struct Cost: Codable, Sendable, Equatable {
        public var method: String
        public var seed: UInt64
        public var rows: Int
        public var wallSeconds: Double
        /// Peak resident memory of the process during the phase.
        public var peakRSSBytes: Int
        /// What the method keeps per pool (losses for ToV, projected gradients for LESS).
        public var bytesStored: Int
        public var note: String
        /// Estimated FLOPs per scored row (``CostModel``), all of this target's work spread over the rows.
        public var flopsPerRow: Double?
        /// The same for a second target on the same pool, counting what the method reuses.
        public var secondTargetFlopsPerRow: Double?
        /// What a second target reuses.
        public var reuse: String?

        public init(method: String, seed: UInt64, rows: Int, wallSeconds: Double, peakRSSBytes: Int, bytesStored: Int, note: String = "") {
            self.method = method
            self.seed = seed
            self.rows = rows
            self.wallSeconds = wallSeconds
            self.peakRSSBytes = peakRSSBytes
            self.bytesStored = bytesStored
            self.note = note
        }
    }

    /// A baseline outside the policy grid, e.g. "θ0 (no fine-tune)" or "θ0 → Z_val only".
    public struct Reference: Codable, Sendable, Equatable {
        public var name: String
        /// nil when the reference does not train (θ0 as is).
        public var learningRate: Double?
        public var seed: UInt64?
        public var testLoss: Double
        /// The proxy shape it belongs to; nil for references shared by all (the uniform guess).
        public var proxy: String?

        public init(name: String, learningRate: Double? = nil, seed: UInt64? = nil, proxy: String? = nil, testLoss: Double) {
            self.name = name
            self.learningRate = learningRate
            self.seed = seed
            self.proxy = proxy
            self.testLoss = testLoss
        }
    }

    /// Response-length histogram of one set of rows (the pool or one policy's selection), in tokens.
    public struct LengthDistribution: Codable, Sendable, Equatable {
        /// "pool" or a policy name.
        public var name: String
        public var histogram: Histogram
        public var mean: Double
        public var median: Double

        public init(name: String, lengths: [Double], edges: [Double]) {
            self.name = name
            var counts = [Int](repeating: 0, count: max(edges.count - 1, 0))
            if !counts.isEmpty {
                for v in lengths where v.isFinite {
                    var i = 0
                    while i < counts.count - 1, v >= edges[i + 1] { i += 1 }
                    counts[i] += 1
                }
            }
            histogram = Histogram(edges: edges, counts: counts)
            mean = Stats.mean(lengths)
            median = Stats.median(lengths)
        }

        public init(name: String, histogram: Histogram, mean: Double, median: Double) {
            self.name = name
            self.histogram = histogram
            self.mean = mean
            self.median = median
        }
    }

    /// How many target-source rows a policy selected versus how many the pool has; and, when the pool
    /// holds rows of the target subtask itself, the same for those.
    public struct Enrichment: Codable, Sendable, Equatable {
        public var policy: String
        public var targetInSelection: Int
        public var selection: Int
        public var targetInPool: Int
        public var pool: Int
        public var subtaskInSelection: Int?
        public var subtaskInPool: Int?
        /// How many text clusters (``Selection/ClusterQuota``) the selection's rows fall in, and the
        /// rows of its largest one: what the `+diverse` policies change; nil in runs without them.
        public var clusters: Int?
        public var largestCluster: Int?

        public init(policy: String, targetInSelection: Int, selection: Int, targetInPool: Int, pool: Int,
                    subtaskInSelection: Int? = nil, subtaskInPool: Int? = nil, clusters: Int? = nil, largestCluster: Int? = nil) {
            self.policy = policy
            self.targetInSelection = targetInSelection
            self.selection = selection
            self.targetInPool = targetInPool
            self.pool = pool
            self.subtaskInSelection = subtaskInSelection
            self.subtaskInPool = subtaskInPool
            self.clusters = clusters
            self.largestCluster = largestCluster
        }

        /// (subtask share of the selection) / (its share of the pool); nil when the pool has none.
        public var subtaskRatio: Double? {
            guard let s = subtaskInSelection, let p = subtaskInPool, p > 0, selection > 0, pool > 0 else { return nil }
            return (Double(s) / Double(selection)) / (Double(p) / Double(pool))
        }

        /// Share of target-source rows in the selection.
        public var selectionShare: Double { selection > 0 ? Double(targetInSelection) / Double(selection) : .nan }
        /// Share of target-source rows in the pool.
        public var poolShare: Double { pool > 0 ? Double(targetInPool) / Double(pool) : .nan }
        /// selectionShare / poolShare: 1 means no enrichment.
        public var ratio: Double { poolShare > 0 ? selectionShare / poolShare : .nan }
    }

    /// Sizes and names describing the experiment (all optional so partial runs can still be reported).
    public struct Setup: Codable, Sendable, Equatable {
        public var title: String = "ToV evaluation"
        public var targetSource: String?
        public var poolRows: Int?
        public var validationRows: Int?
        public var testRows: Int?
        public var budgetRows: Int?
        /// Free-form extra settings shown as a key/value table (method, score_fn, epochs, model size …).
        public var settings: [String: String] = [:]

        public init(title: String = "ToV evaluation", targetSource: String? = nil, poolRows: Int? = nil,
                    validationRows: Int? = nil, testRows: Int? = nil, budgetRows: Int? = nil,
                    settings: [String: String] = [:]) {
            self.title = title
            self.targetSource = targetSource
            self.poolRows = poolRows
            self.validationRows = validationRows
            self.testRows = testRows
            self.budgetRows = budgetRows
            self.settings = settings
        }
    }

    public var setup: Setup
    public var runs: [Run]
    public var references: [Reference]
    /// Histogram of the ToV scores φ over the scored pool.
    public var scoreHistogram: Histogram?
    /// The pool's and each policy's response-length distributions, over shared bin edges.
    public var lengths: [LengthDistribution]
    public var enrichment: [Enrichment]
    /// Scoring cost per method and seed (nil in older reports, which did not measure it).
    public var costs: [Cost]?
    /// Policy used as the baseline for improvements (normally "random").
    public var baselinePolicy: String
    public var wallTimeSeconds: Double
    public var commandLine: String
    /// ISO-8601 time the report was made.
    public var createdAt: String
    /// How the target was held out and the overlap measured on the split (nil in old-protocol reports).
    public var heldOut: HeldOutReport?
    /// The comparisons with their intervals, derived from `runs` when the report was written (nil in
    /// old-protocol reports); ``ProtocolAnalysis/init(_:)`` recomputes it from the runs.
    public var analysis: ProtocolAnalysis?

    public init(setup: Setup, runs: [Run], references: [Reference] = [], scoreHistogram: Histogram? = nil,
                lengths: [LengthDistribution] = [], enrichment: [Enrichment] = [], costs: [Cost] = [], baselinePolicy: String = "random",
                wallTimeSeconds: Double, commandLine: String, createdAt: String = ISO8601DateFormatter().string(from: Date())) {
        self.setup = setup
        self.runs = runs
        self.references = references
        self.scoreHistogram = scoreHistogram
        self.lengths = lengths
        self.enrichment = enrichment
        self.costs = costs
        self.baselinePolicy = baselinePolicy
        self.wallTimeSeconds = wallTimeSeconds
        self.commandLine = commandLine
        self.createdAt = createdAt
    }

    /// The one committed format: pretty-printed, sorted keys, non-finite numbers as strings.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> EvaluationReport {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(EvaluationReport.self, from: data)
    }

    /// Policies in first-appearance order.
    public var policies: [String] { Self.unique(runs.map(\.policy)) }
    /// Learning rates, largest first (the order the paper's tables use).
    public var learningRates: [Double] { Array(Set(runs.map(\.learningRate))).sorted(by: >) }
    /// Seeds, ascending.
    public var seeds: [UInt64] { Array(Set(runs.map(\.seed))).sorted() }

    /// Proxy shapes in first-appearance order ([] for reports made before proxies had names).
    public var proxies: [String] { Self.unique(runs.compactMap(\.proxy)) }

    /// The report as if only `proxy` had been fine-tuned: its runs, its references and the shared ones.
    public func restricted(toProxy proxy: String) -> EvaluationReport {
        var r = self
        r.runs = runs.filter { $0.proxy == proxy }
        r.references = references.filter { $0.proxy == nil || $0.proxy == proxy }
        return r
    }

    /// Test losses of one grid cell, one per seed.
    public func losses(policy: String, learningRate: Double) -> [Double] {
        runs.filter { $0.policy == policy && $0.learningRate == learningRate }.map(\.testLoss).filter(\.isFinite)
    }

    static func unique(_ xs: [String]) -> [String] {
        var seen = Set<String>()
        return xs.filter { seen.insert($0).inserted }
    }
}
