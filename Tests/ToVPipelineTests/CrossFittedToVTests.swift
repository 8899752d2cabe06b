import Selection
import Surrogate
import Testing
@testable import ToVPipeline

/// Cross-fitted ToV (``CrossFittedToV``) on the small surrogate and pool of the Z_val agreement tests.
@Suite("Cross-fitted ToV")
struct CrossFittedToVTests {
    typealias Fixture = ZvalAgreementTests

    /// Folds hold whole context groups, as even in rows as the groups allow; fewer folds than asked
    /// when there are fewer groups, none for one group.
    @Test func foldsKeepContextsWholeAndEven() throws {
        let groups = [[0, 1, 2, 3], [4, 5], [6], [7], [8, 9, 10], [11]]
        let folds = try #require(ZvalAgreement.folds(groups, count: 3, seed: 7))
        #expect(folds.count == 3)
        #expect(folds.flatMap { $0 }.sorted() == Array(0...11))
        for group in groups { #expect(folds.filter { !Set($0).isDisjoint(with: group) }.count == 1, "group \(group) split: \(folds)") }
        // 12 rows in groups of at most 4: greedy filling leaves folds at most one largest group apart.
        #expect(folds.map(\.count).max()! - folds.map(\.count).min()! <= 4)
        #expect(ZvalAgreement.folds(groups, count: 8, seed: 7)?.count == 6)
        #expect(ZvalAgreement.folds([[0, 1, 2]], count: 2, seed: 7) == nil)
        // Two folds are the Z_val signal's halves.
        let halves = try #require(ZvalAgreement.halves(groups, seed: 7))
        #expect([halves.a, halves.b] == ZvalAgreement.folds(groups, count: 2, seed: 7))
    }

    /// The pipeline's cross-fitted rows are the ones measured directly on θ_bas^L with the same settings
    /// (and measuring leaves θ_bas^L as it was); the folds' nudges on cat rows raise the pool's cat rows
    /// above its market rows, as plain ToV does; a Z_val of one context gives
    /// no cross-fitted scores.
    @Test func thePipelineScoresWhatTheFoldsMeasureAndRanksOnTaskRowsFirst() throws {
        let cats = (0..<40).map { Fixture.row($0, "the cat sat on the mat \($0)", "the cat purred \($0 % 3)") }
        // One row is one context (a passage in every row of a larger Z_val would read as its instruction).
        let oneContext = [cats[0]]
        var pipeline = PipelineRun(model: Fixture.config, settings: Fixture.settings, uSize: 150, method: .A, scoreFunction: .improvement)
        pipeline.scoring = Model.ScoringOptions(precision: .fp32)
        pipeline.crossFitFolds = [2, 3]
        let result = pipeline.run(pool: Fixture.pool, zvals: [cats, oneContext], theta0: .bootstrap)
        let two = try #require(result.targets[0].crossFitted[2]), three = try #require(result.targets[0].crossFitted[3])
        #expect(result.targets[1].crossFitted.keys.sorted() == [])
        #expect(two.map(\.id) == result.rows.map(\.id) && three.map(\.id) == result.rows.map(\.id))

        let inU = Set(result.u)
        let scored = Fixture.pool.filter { !inU.contains($0.id) }
        let examples = RowScoring.examples(scored, tokenizer: result.theta0.tokenizer, context: Fixture.config.context)
        let before = result.finalBase.losses(examples).map(\.meanNLL)
        let direct = try #require(CrossFittedToV.losses(base: result.finalBase, tokenizer: result.theta0.tokenizer, zval: cats, scored: examples,
                                                        folds: 2, trajectory: Trajectory(settings: Fixture.settings),
                                                        scoring: Model.ScoringOptions(precision: .fp32)))
        #expect(result.finalBase.losses(examples).map(\.meanNLL) == before)
        #expect(direct.base.allSatisfy { $0.losses.count == 2 } && direct.val.allSatisfy { $0.count == 2 })
        let rescored = scored.indices.map { RowScoring.scoredRow(id: scored[$0].id, base: direct.base[$0], val: direct.val[$0], function: .improvement) }
        #expect(rescored == two)

        // Even pool indices are cat rows (Fixture.pool).
        func meanScore(_ rows: [ScoredRow], cats: Bool) -> Double {
            let chosen = rows.filter { (($0.id - 1000) % 2 == 0) == cats }
            return chosen.reduce(0) { $0 + $1.score } / Double(chosen.count)
        }
        #expect(meanScore(two, cats: true) > meanScore(two, cats: false), "cat rows \(meanScore(two, cats: true)), market rows \(meanScore(two, cats: false))")
        #expect(meanScore(three, cats: true) > meanScore(three, cats: false))
    }
}
