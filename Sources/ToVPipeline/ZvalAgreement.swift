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
/// Its cost is three nudges of about |Z_val| / 2 rows and four forward passes over the sample (512
/// rows): small beside a refresh, which trains θ_val L times on Z_val and rescores every row L times.
public struct ZvalAgreement: Codable, Sendable, Equatable {
    /// Spearman correlation of the two halves' drops, the part any nudge makes included.
    public var halves: Double
    /// The halves' Spearman correlation with the control's drops partialled out: the signal. NaN
    /// when Z_val is a single context (it has no halves) or the control explains every ranking.
    public var agreement: Double
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

    public init(halves: Double, agreement: Double, sampleRows: Int, groups: Int, halfRows: Int) {
        self.halves = halves
        self.agreement = agreement
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
            return ZvalAgreement(halves: .nan, agreement: .nan, sampleRows: sample.count, groups: 1, halfRows: 0)
        }
        var controlRandom = SplitMix64(seed: seed &+ 0xC0)
        let control = Array(u.indices).shuffled(using: &controlRandom).prefix((halfA.count + halfB.count) / 2).map { u[$0] }

        let examples = RowScoring.examples(sample, tokenizer: tokenizer, context: base.config.context)
        let before = base.losses(examples, options: scoring).map { Double($0.meanNLL) }
        func drops(_ rows: [RowText]) -> [Double]? {
            let model = Trajectory.start(from: base)
            trajectory.trainVal(model, epoch: trajectory.settings.epochs, method: .A, u: [],
                                zval: Trajectory.trainingExamples(rows, tokenizer: tokenizer))
            if trajectory.shouldStop?() == true { return nil }
            return zip(before, model.losses(examples, options: scoring)).map { $0 - Double($1.meanNLL) }
        }
        guard let a = drops(halfA.map { zval[$0] }), let b = drops(halfB.map { zval[$0] }), let c = drops(control) else { return nil }
        return ZvalAgreement(halves: RankCorrelation.spearman(a, b), agreement: RankCorrelation.partialSpearman(a, b, given: c),
                             sampleRows: sample.count, groups: groups.count, halfRows: min(halfA.count, halfB.count))
    }

    /// Z_val's rows (indices) grouped by shared context: two rows whose prompts share a run of
    /// ``shingleWords`` words are in one group, unless more than ``templateShare`` of all rows have that
    /// run (the instruction every row repeats). Several questions about one passage are one group; rows
    /// with nothing in common are a group each. Linear in Z_val's words.
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
        var parent = Array(rows.indices)
        func root(_ i: Int) -> Int {
            var i = i
            while parent[i] != i { parent[i] = parent[parent[i]]; i = parent[i] }
            return i
        }
        let templateRows = Double(rows.count) * templateShare
        for sharing in rowsWith.values where sharing.count >= 2 && Double(sharing.count) <= templateRows {
            let first = root(sharing[0])
            for j in sharing.dropFirst() { parent[root(j)] = first }
        }
        var groups: [Int: [Int]] = [:]
        for i in rows.indices { groups[root(i), default: []].append(i) }
        return groups.values.sorted { $0[0] < $1[0] }
    }

    /// Two halves of whole groups, as even in rows as the groups allow: groups in a seeded order, each
    /// to the half with fewer rows. Nil for a single group.
    static func halves(_ groups: [[Int]], seed: UInt64) -> (a: [Int], b: [Int])? {
        guard groups.count >= 2 else { return nil }
        var random = SplitMix64(seed: seed)
        var a: [Int] = [], b: [Int] = []
        for group in groups.shuffled(using: &random) {
            if a.count <= b.count { a += group } else { b += group }
        }
        return (a.sorted(), b.sorted())
    }

    /// The sample's ids among `ids` (the pool): the first ``sampleSize`` outside U in U's own rank order
    /// (``UDraw/ranked(ids:seed:)``), a uniform sample of the rows outside U that the daemon draws with
    /// the same ORDER BY among its ready rows.
    public static func sampleIDs(ids: [Int64], uSize: Int, seed: Int64) -> [Int64] {
        Array(UDraw.ranked(ids: ids, seed: seed).dropFirst(max(uSize, 0)).prefix(sampleSize))
    }
}
