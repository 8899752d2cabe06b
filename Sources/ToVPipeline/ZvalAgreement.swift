import Selection
import Surrogate

/// The Z_val signal of `tovd status` (docs/selection.md): does Z_val say the same thing about the pool
/// when it is cut in two? A Z_val too small or too noisy to trust nudges θ_val mostly by its own rows'
/// noise, and the selection then ranks the pool by that noise; two halves of such a Z_val disagree.
///
/// Z_val is cut into two halves in a seeded order. Each half nudges θ_bas^L as the θ_val pass does
/// (one pass at ε, Method A's step), and so does a control: as many rows of U, which θ_bas has trained
/// on already. All three score the same sample of rows outside U, and each nudge's loss drops
/// ℓ(θ_bas^L, x) − ℓ(nudged, x) order the sample. Any nudge lowers some rows more than others whatever
/// its rows teach (the format, common words): the control's drops are that part. The agreement is the
/// Spearman correlation of the halves' drops with the control's partialled out; the reliability,
/// Spearman–Brown's 2r / (1 + r), estimates how two Z_vals of the full size would agree.
///
/// Its cost is three nudges of |Z_val| / 2 rows and four forward passes over the sample (512 rows):
/// small beside a refresh, which trains θ_val L times on Z_val and rescores every row L times.
public struct ZvalAgreement: Codable, Sendable, Equatable {
    /// Spearman correlation of the two halves' drops, the part any nudge makes included.
    public var halves: Double
    /// The halves' Spearman correlation with the control's drops partialled out (NaN when degenerate).
    public var agreement: Double
    /// Spearman–Brown of `agreement`, 0 when it is not positive: the agreement of two whole Z_vals.
    public var reliability: Double
    /// Rows scored, and rows in each half (and in the control).
    public var sampleRows: Int
    public var halfRows: Int

    /// Rows outside U scored: enough for a correlation's standard error of about 0.045.
    public static let sampleSize = 512
    /// The smallest sample worth a number: below it the correlation's noise hides any verdict.
    public static let minimumSample = 64

    public init(halves: Double, agreement: Double, sampleRows: Int, halfRows: Int) {
        self.halves = halves
        self.agreement = agreement
        self.reliability = agreement > 0 ? 2 * agreement / (1 + agreement) : 0
        self.sampleRows = sampleRows
        self.halfRows = halfRows
    }

    /// The agreement of `zval`'s halves on `sample`, nudging `base` (θ_bas^L) as `trajectory` nudges
    /// θ_val at its last epoch. `u` is U (the control's rows). Nil when Z_val has fewer than 2 rows, U
    /// fewer than half of them, the sample fewer than ``minimumSample`` rows, or training stopped.
    public static func measure(base: Model, tokenizer: Tokenizer, zval: [RowText], u: [RowText], sample: [RowText],
                               trajectory: Trajectory, scoring: Model.ScoringOptions = .init()) -> ZvalAgreement? {
        let half = zval.count / 2
        guard half >= 1, u.count >= half, sample.count >= minimumSample else { return nil }
        let seed = UInt64(bitPattern: trajectory.settings.seed)
        var zvalRandom = SplitMix64(seed: seed &+ 0x5A), controlRandom = SplitMix64(seed: seed &+ 0xC0)
        let zvalOrder = Array(zval.indices).shuffled(using: &zvalRandom)
        let controlOrder = Array(u.indices).shuffled(using: &controlRandom)
        let halfA = zvalOrder[0..<half].map { zval[$0] }
        let halfB = zvalOrder[half..<(2 * half)].map { zval[$0] }
        let control = controlOrder.prefix(half).map { u[$0] }

        let examples = RowScoring.examples(sample, tokenizer: tokenizer, context: base.config.context)
        let before = base.losses(examples, options: scoring).map { Double($0.meanNLL) }
        func drops(_ rows: [RowText]) -> [Double]? {
            let model = Trajectory.start(from: base)
            trajectory.trainVal(model, epoch: trajectory.settings.epochs, method: .A, u: [],
                                zval: Trajectory.trainingExamples(rows, tokenizer: tokenizer))
            if trajectory.shouldStop?() == true { return nil }
            return zip(before, model.losses(examples, options: scoring)).map { $0 - Double($1.meanNLL) }
        }
        guard let a = drops(halfA), let b = drops(halfB), let c = drops(control) else { return nil }
        return ZvalAgreement(halves: RankCorrelation.spearman(a, b), agreement: RankCorrelation.partialSpearman(a, b, given: c),
                             sampleRows: sample.count, halfRows: half)
    }

    /// The sample's ids among `ids` (the pool): the first ``sampleSize`` outside U in U's own rank order
    /// (``UDraw/ranked(ids:seed:)``), a uniform sample of the rows outside U that the daemon draws with
    /// the same ORDER BY among its ready rows.
    public static func sampleIDs(ids: [Int64], uSize: Int, seed: Int64) -> [Int64] {
        Array(UDraw.ranked(ids: ids, seed: seed).dropFirst(max(uSize, 0)).prefix(sampleSize))
    }
}
