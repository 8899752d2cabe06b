import Selection
import Surrogate

/// The Z_val signal of `tovd status` (docs/selection.md): does Z_val say the same thing about the pool
/// when it is cut in two? A Z_val too small, too narrow or too noisy to trust nudges θ_val mostly by
/// what its own few rows or contexts happen to teach, and the selection then ranks the pool by that;
/// two halves of such a Z_val disagree.
///
/// Z_val is cut along its contexts (``contextGroups(_:)``): rows that share a passage go to the same
/// half, so the halves disagree when Z_val covers few contexts, not only when it has few rows (a split
/// by row would put every passage in both halves and call a Z_val of three passages consistent). Each
/// half nudges θ_bas^L as the θ_val pass does (one pass at ε, Method A's step), and so does a control:
/// as many rows of U, which θ_bas has trained on already. All three score the same sample of rows
/// outside U, and each nudge's loss drops ℓ(θ_bas^L, x) − ℓ(nudged, x) order the sample. Any nudge
/// lowers some rows more than others whatever its rows teach: the control's drops are that part. The
/// agreement is the Spearman correlation of the halves' drops with the control's partialled out.
///
/// The same nudges give each Z_val row's held-out gain: how much the other half's nudge lowers its loss
/// beyond the control's. A row of another task gains nothing from the rest of Z_val.
///
/// Its cost is three nudges of about |Z_val| / 2 rows and four forward passes over the sample (512
/// rows) and Z_val: small beside a refresh, which trains θ_val L times on Z_val and rescores every
/// row L times.
public struct ZvalAgreement: Codable, Sendable, Equatable {
    /// Spearman correlation of the two halves' drops, the part any nudge makes included.
    public var halves: Double
    /// The halves' Spearman correlation with the control's drops partialled out: the signal. NaN
    /// when Z_val is a single context (it has no halves) or the control explains every ranking.
    public var agreement: Double
    /// How much of what a half's nudge teaches its own rows it also teaches the other half's rows:
    /// mean held-out drop ÷ mean own drop over Z_val's rows, each beyond the control's drop on that row.
    /// Near 1: the halves teach one task; near 0: each half teaches only itself (few contexts, noise).
    public var transfer: Double
    /// The share of Z_val's rows whose loss the other half's nudge lowers more than the control's:
    /// the rows the rest of Z_val agrees with (an off-target row is not among them).
    public var helpedShare: Double
    /// Per Z_val row, in the order given: its held-out drop beyond the control's (the other half's
    /// nudge lowers its loss by this much more than the control's does); ≤ 0 for a row the rest of
    /// Z_val does not help. Empty when Z_val has no halves. Not encoded (the daemon stores it per row).
    public var rowGains: [Double] = []
    /// Rows scored; Z_val's context groups; rows in the smaller half.
    public var sampleRows: Int
    public var groups: Int
    public var halfRows: Int

    /// Rows outside U scored: enough for a correlation's standard error of about 0.045.
    public static let sampleSize = 512
    /// The smallest sample worth a number: below it the correlation's noise hides any verdict.
    public static let minimumSample = 64
    /// Prompts that share a run of this many words share a context.
    public static let shingleWords = 8
    /// A run that most rows have is the instruction or a template, not a context.
    public static let templateShare = 0.5
    /// A run that this many rows have is boilerplate, not a passage asked about (and the pairs of rows
    /// it would count grow with its square).
    public static let maximumSharing = 64
    /// Rows share a context when this share of the shorter one's linking runs is in both.
    public static let linkOverlap = 0.5

    enum CodingKeys: String, CodingKey {
        case halves, agreement, transfer, helpedShare, sampleRows, groups, halfRows
    }

    public init(halves: Double, agreement: Double, transfer: Double, helpedShare: Double, sampleRows: Int, groups: Int, halfRows: Int) {
        self.halves = halves
        self.agreement = agreement
        self.transfer = transfer
        self.helpedShare = helpedShare
        self.sampleRows = sampleRows
        self.groups = groups
        self.halfRows = halfRows
    }

    /// The agreement of `zval`'s halves on `sample`, nudging `base` (θ_bas^L) as `trajectory` nudges
    /// θ_val at its last epoch. `u` is U (the control's rows). Nil when Z_val has fewer than 2 rows, U
    /// fewer than half of them, the sample fewer than ``minimumSample`` rows, or training stopped.
    public static func measure(base: Model, tokenizer: Tokenizer, zval: [RowText], u: [RowText], sample: [RowText],
                               trajectory: Trajectory, scoring: Model.ScoringOptions = .init()) -> ZvalAgreement? {
        guard zval.count >= 2, u.count >= zval.count / 2, sample.count >= minimumSample else { return nil }
        let groups = contextGroups(zval)
        let seed = UInt64(bitPattern: trajectory.settings.seed)
        guard let (halfA, halfB) = halves(groups, seed: seed &+ 0x5A) else {
            return ZvalAgreement(halves: .nan, agreement: .nan, transfer: .nan, helpedShare: .nan, sampleRows: sample.count, groups: 1, halfRows: 0)
        }
        var controlRandom = SplitMix64(seed: seed &+ 0xC0)
        let control = Array(u.indices).shuffled(using: &controlRandom).prefix((halfA.count + halfB.count) / 2).map { u[$0] }

        // Each nudge's loss drops on the sample and on Z_val's own rows.
        let sampleExamples = RowScoring.examples(sample, tokenizer: tokenizer, context: base.config.context)
        let zvalExamples = RowScoring.examples(zval, tokenizer: tokenizer, context: base.config.context)
        func losses(_ model: Model, _ examples: [Example]) -> [Double] { model.losses(examples, options: scoring).map { Double($0.meanNLL) } }
        let sampleBefore = losses(base, sampleExamples), zvalBefore = losses(base, zvalExamples)
        func drops(_ rows: [RowText]) -> (sample: [Double], zval: [Double])? {
            let model = Trajectory.start(from: base)
            trajectory.trainVal(model, epoch: trajectory.settings.epochs, method: .A, u: [],
                                zval: Trajectory.trainingExamples(rows, tokenizer: tokenizer))
            if trajectory.shouldStop?() == true { return nil }
            return (zip(sampleBefore, losses(model, sampleExamples)).map { $0 - $1 }, zip(zvalBefore, losses(model, zvalExamples)).map { $0 - $1 })
        }
        guard let a = drops(halfA.map { zval[$0] }), let b = drops(halfB.map { zval[$0] }), let c = drops(control) else { return nil }

        // Each Z_val row under the other half's nudge (held out) and its own half's, beyond the control's.
        var heldOut = [Double](repeating: 0, count: zval.count), own = heldOut
        for i in halfA { heldOut[i] = b.zval[i] - c.zval[i]; own[i] = a.zval[i] - c.zval[i] }
        for i in halfB { heldOut[i] = a.zval[i] - c.zval[i]; own[i] = b.zval[i] - c.zval[i] }
        let ownMean = own.reduce(0, +) / Double(own.count)
        var result = ZvalAgreement(halves: RankCorrelation.spearman(a.sample, b.sample),
                                   agreement: RankCorrelation.partialSpearman(a.sample, b.sample, given: c.sample),
                                   transfer: ownMean > 0 ? heldOut.reduce(0, +) / Double(heldOut.count) / ownMean : .nan,
                                   helpedShare: Double(heldOut.filter { $0 > 0 }.count) / Double(heldOut.count),
                                   sampleRows: sample.count, groups: groups.count, halfRows: min(halfA.count, halfB.count))
        result.rowGains = heldOut
        return result
    }

    /// Z_val's rows (indices) grouped by shared context: two rows are linked when most of the shorter
    /// prompt's ``shingleWords``-word runs occur in the other (at least ``linkOverlap`` of them), not
    /// counting runs that more than ``templateShare`` of all rows have (the instruction every row
    /// repeats) or more than ``maximumSharing`` rows have (boilerplate); groups are the linked rows'
    /// connected sets. Several questions about one passage are one group; two passages that share a
    /// phrase are not; rows with nothing in common are a group each.
    public static func contextGroups(_ rows: [RowText]) -> [[Int]] {
        let shingles = rows.map { row -> Set<UInt64> in
            let words = TextWords.hashes(row.prompt)
            guard words.count >= shingleWords else { return [] }
            return Set((0...(words.count - shingleWords)).map { TextWords.run(words[$0..<($0 + shingleWords)]) })
        }
        var rowsWith: [UInt64: [Int]] = [:]
        for (i, set) in shingles.enumerated() {
            for s in set { rowsWith[s, default: []].append(i) }
        }
        let ceiling = min(Double(rows.count) * templateShare, Double(maximumSharing))
        // Per row, its runs that can link it (shared, and not the template).
        var linking = [Int](repeating: 0, count: rows.count)
        var shared: [Int: Int] = [:]   // i · n + j (i < j) → runs both have
        for sharing in rowsWith.values where sharing.count >= 2 && Double(sharing.count) <= ceiling {
            for i in sharing { linking[i] += 1 }
            for x in sharing.indices {
                for y in sharing.indices where y > x { shared[sharing[x] * rows.count + sharing[y], default: 0] += 1 }
            }
        }
        var parent = Array(rows.indices)
        func root(_ i: Int) -> Int {
            var i = i
            while parent[i] != i { parent[i] = parent[parent[i]]; i = parent[i] }
            return i
        }
        for (pair, count) in shared {
            let (i, j) = (pair / rows.count, pair % rows.count)
            if Double(count) >= linkOverlap * Double(min(linking[i], linking[j])) { parent[root(j)] = root(i) }
        }
        var groups: [Int: [Int]] = [:]
        for i in rows.indices { groups[root(i), default: []].append(i) }
        return groups.values.sorted { $0[0] < $1[0] }
    }

    /// Two halves of whole groups (``folds(_:count:seed:)`` with two). Nil for a single group.
    static func halves(_ groups: [[Int]], seed: UInt64) -> (a: [Int], b: [Int])? {
        guard let two = folds(groups, count: 2, seed: seed) else { return nil }
        return (two[0], two[1])
    }

    /// Row indices in up to `count` folds of whole context groups, as even in rows as the groups allow:
    /// groups in a seeded order, each to the fold with fewest rows (the first of equals); each fold
    /// sorted. Fewer folds when there are fewer groups; nil for a single group (nothing to hold out).
    public static func folds(_ groups: [[Int]], count: Int, seed: UInt64) -> [[Int]]? {
        let k = min(count, groups.count)
        guard k >= 2 else { return nil }
        var random = SplitMix64(seed: seed)
        var folds = [[Int]](repeating: [], count: k)
        for group in groups.shuffled(using: &random) {
            let smallest = folds.indices.min { folds[$0].count != folds[$1].count ? folds[$0].count < folds[$1].count : $0 < $1 }!
            folds[smallest] += group
        }
        return folds.map { $0.sorted() }
    }

    /// The sample's ids among `ids` (the pool): the first ``sampleSize`` outside U in U's own rank order
    /// (``UDraw/ranked(ids:seed:)``), a uniform sample of the rows outside U that the daemon draws with
    /// the same ORDER BY among its ready rows.
    public static func sampleIDs(ids: [Int64], uSize: Int, seed: Int64) -> [Int64] {
        Array(UDraw.ranked(ids: ids, seed: seed).dropFirst(max(uSize, 0)).prefix(sampleSize))
    }
}
