import Selection
import Surrogate

/// Cross-fitted ToV (issue 27's first candidate; docs/selection.md): a row's score is how much it
/// still helps on target rows the model has not trained on.
///
/// Plain ToV nudges θ_bas on all of Z_val and rewards the rows whose loss drops most, which are the
/// rows most like Z_val: what helps a model that has never seen Z_val. A user trains on Z_val anyway,
/// so what a selected row should add is what Z_val does not already teach. Cross-fitting asks exactly
/// that of each fold of Z_val: fold k's model is θ_bas^L trained one pass on the other folds (at η, the
/// model a user has after training on most of Z_val), then nudged on fold k (one pass at ε, fresh
/// moments, as Method A's θ_val); the row's drop between the two is its fold-k score, and φ is the mean
/// over folds of F(drop), ToV's own formula with folds in place of epochs. Folds are cut along Z_val's
/// contexts (``ZvalAgreement/contextGroups(_:)``): a fold whose passages the other folds already taught
/// would measure nothing new.
///
/// Its cost per scored row is two forward passes per fold: with 2 folds, the 2L passes of plain ToV at
/// the default L = 2 (θ_bas^L itself is trained as for plain ToV; the folds' training is a pass over
/// Z_val each).
public enum CrossFittedToV {
    /// The default number of folds: two keeps the passes per row at plain ToV's.
    public static let defaultFolds = 2

    /// Per scored example, per fold: ℓ(fitted_k, x) and ℓ(nudged_k, x), the losses φ is made from
    /// (``RowScoring/scoredRow(id:base:val:function:)`` with folds as its epochs). `base` is θ_bas^L and
    /// is not changed. Nil when Z_val has a single context group, or training stopped.
    /// `progress(done, total)` counts scored rows over all folds' passes.
    public static func losses(base: Model, tokenizer: Tokenizer, zval: [RowText], scored: [Example], folds count: Int,
                              trajectory: Trajectory, scoring: Model.ScoringOptions = .init(),
                              progress: ((_ done: Int, _ total: Int) -> Void)? = nil) -> (base: [BaseLossRecord], val: [[Float]])? {
        let settings = trajectory.settings
        guard let folds = ZvalAgreement.folds(ZvalAgreement.contextGroups(zval), count: count, seed: UInt64(bitPattern: settings.seed) &+ 0xCF) else { return nil }
        let examples = Trajectory.trainingExamples(zval, tokenizer: tokenizer)
        var baseLosses = [BaseLossRecord](repeating: .empty, count: scored.count)
        var valLosses = [[Float]](repeating: [], count: scored.count)
        let total = 2 * folds.count * scored.count
        var done = 0
        let report = progress.map { progress in { (done: Int) in progress(done, total) } }
        for (k, fold) in folds.enumerated() {
            let held = Set(fold)
            let fitted = Trajectory.start(from: base)
            fitted.train(on: examples.indices.filter { !held.contains($0) }.map { examples[$0] },
                         options: settings.crossFitPass(k, stop: trajectory.shouldStop), progress: trajectory.onStep)
            let nudged = Trajectory.start(from: fitted)
            trajectory.trainVal(nudged, epoch: settings.epochs, method: .A, u: [], zval: fold.map { examples[$0] })
            if trajectory.shouldStop?() == true { return nil }
            let b = RowScoring.inChunks(scored, done: &done, report: report) { RowScoring.baseLosses($0, base: [fitted], options: scoring) }
            let v = RowScoring.inChunks(scored, done: &done, report: report) { RowScoring.valLosses($0, val: [nudged], options: scoring) }
            for i in scored.indices {
                baseLosses[i].append(b[i])
                valLosses[i] += v[i]
            }
        }
        return (baseLosses, valLosses)
    }
}
