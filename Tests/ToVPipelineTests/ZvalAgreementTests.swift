import Selection
import Surrogate
import Testing
@testable import ToVPipeline

/// The Z_val signal (``ZvalAgreement``) on a small surrogate: what it must say for Z_vals whose answer
/// is known, and that the pipeline reports it for every target.
@Suite("Z_val agreement")
struct ZvalAgreementTests {
    static let config = ModelConfig(layers: 1, width: 16, heads: 2, context: 32, vocabSize: 300)

    /// 400 rows on two topics; U is 150 of them, so 250 are outside U and the sample is 250 rows.
    static let pool: [RowText] = (0..<400).map { i in
        let (prompt, response) = i % 2 == 0
            ? (String(repeating: "the cat sat on the mat \(i % 13). ", count: 3), "the cat purred \(i % 7)")
            : (String(repeating: "stock prices fell sharply \(i % 11). ", count: 3), "markets closed lower \(i % 5)")
        return RowText(id: Int64(1000 + i), prompt: Array(prompt.utf8), response: Array(response.utf8))
    }

    static func row(_ id: Int, _ prompt: String, _ response: String) -> RowText {
        RowText(id: Int64(id), prompt: Array(prompt.utf8), response: Array(response.utf8))
    }

    static let settings = TrajectorySettings(epochs: 2, learningRate: 0.01, valLearningRateRatio: 0.1, pretrainSteps: 5, seed: 3)

    static func run(_ zvals: [[RowText]]) -> PipelineRun.Result {
        var pipeline = PipelineRun(model: config, settings: settings, uSize: 150, method: .A, scoreFunction: .improvement)
        pipeline.scoring = Model.ScoringOptions(precision: .fp32)
        return pipeline.run(pool: pool, zvals: zvals, theta0: .bootstrap)
    }

    /// Halves made of the same rows train the same model (the same pass, the same order), so they agree
    /// fully, whatever the control does; a Z_val of one row has no halves; and the pipeline's number is
    /// the one measured directly on θ_bas^L with the sample the daemon draws.
    @Test func identicalHalvesAgreeFullyAndThePipelineReportsTheMeasure() throws {
        let same = (0..<40).map { Self.row($0, "the cat sat on the mat. the cat sat on the mat.", "the cat purred") }
        let result = Self.run([same, [same[0]]])
        let agreement = try #require(result.targets[0].agreement)
        #expect(agreement.halves == 1 && agreement.agreement == 1)
        // Every prompt is the same run of words: an instruction, not a context, so each row is a group.
        #expect(agreement.groups == 40 && agreement.halfRows == 20 && agreement.sampleRows == 250)
        #expect(result.targets[1].agreement == nil)

        let sampleIDs = Set(ZvalAgreement.sampleIDs(ids: Self.pool.map(\.id), uSize: 150, seed: Self.settings.seed))
        let inU = Set(result.u)
        #expect(sampleIDs.count == 250 && sampleIDs.isDisjoint(with: inU))
        let u = Self.pool.filter { inU.contains($0.id) }.sorted { $0.id < $1.id }
        let direct = ZvalAgreement.measure(base: result.finalBase, tokenizer: result.theta0.tokenizer, zval: same, u: u,
                                           sample: Self.pool.filter { sampleIDs.contains($0.id) },
                                           trajectory: Trajectory(settings: Self.settings),
                                           scoring: Model.ScoringOptions(precision: .fp32))
        #expect(direct == agreement)
    }

    /// A Z_val of many small contexts of one task says one thing about the pool in both halves; a Z_val
    /// of two contexts on two topics is cut between them, and its halves say opposite things about the
    /// pool and do not help each other's rows.
    @Test func aZvalOfTwoContextsAgreesLessThanOneOfManyContexts() throws {
        let many = (0..<40).map { Self.row($0, "the cat sat on the mat \($0)", "the cat purred \($0 % 3)") }
        let cats = String(repeating: "the cat sat on the mat and looked at the garden. ", count: 2)
        let markets = String(repeating: "stock prices fell sharply as the markets closed. ", count: 2)
        let two = (0..<40).map { i in Self.row(i, (i < 20 ? cats : markets) + "question \(i)", i < 20 ? "the cat purred" : "markets closed lower") }
        let result = Self.run([many, two])
        let a = try #require(result.targets[0].agreement), b = try #require(result.targets[1].agreement)
        #expect(a.groups == 40 && b.groups == 2)
        #expect(a.agreement > b.agreement + 0.2, "many contexts \(a), two \(b)")
        // What one half teaches its rows carries to the other half's rows of the same task, and not across
        // topics: there the other half's nudge helps a row less than a nudge on U does.
        #expect(a.transfer > 0.5 && b.transfer < 0, "many contexts \(a), two \(b)")
        #expect(a.helpedShare > b.helpedShare + 0.5, "many contexts \(a), two \(b)")
    }

    /// Rows that share a passage are one group; the instruction every row repeats links none; a row with
    /// nothing in common is a group of its own. Passages that chain every row together make one group,
    /// which has no halves: no agreement. (A passage that every row shares reads as an instruction: the
    /// text alone cannot tell them apart, docs/selection.md says so.)
    @Test func contextGroupsFollowSharedPassagesNotTheInstruction() throws {
        let instruction = "Answer the question about the passage below using only words from the passage itself. "
        let passages = ["The river rose through the night and by morning the old stone bridge near the mill was under water.",
                        "In the second quarter the home team kicked three field goals and the visitors answered with a long touchdown run.",
                        "The committee met twice in the spring and agreed to build a new library on the site of the old market hall.",
                        "Her first novel sold slowly at first but found readers after a radio programme read its opening chapter aloud."]
        var rows: [RowText] = []
        for (p, passage) in passages.prefix(2).enumerated() {
            for q in 0..<4 { rows.append(Self.row(rows.count, instruction + passage + " Question \(q) about passage \(p)?", "answer \(q)")) }
        }
        rows.append(Self.row(rows.count, instruction + "A short note with nothing shared.", "alone"))
        #expect(ZvalAgreement.contextGroups(rows) == [[0, 1, 2, 3], [4, 5, 6, 7], [8]])
        #expect(ZvalAgreement.contextGroups(Array(rows.prefix(4))).count == 4, "one passage in every row: read as the instruction")

        // Row i holds passages i and i + 1 (mod 4): each passage is in half the rows, and they chain.
        let chained = (0..<4).map { i in Self.row(i, instruction + passages[i] + " " + passages[(i + 1) % 4] + " Which came first?", "the \(i)") }
        #expect(ZvalAgreement.contextGroups(chained) == [[0, 1, 2, 3]])
        let agreement = try #require(Self.run([chained]).targets[0].agreement)
        #expect(agreement.groups == 1 && agreement.agreement.isNaN && agreement.halfRows == 0)
    }

    /// A Z_val with a block of another task's rows in it (six questions about one market report): the
    /// block is one context, so it sits in one half, and the other half (cats only) does not help it.
    /// Those rows are the ones with no held-out gain (what tov.zval_unhelped lists).
    @Test func theRowsTheRestOfZvalDoesNotHelpAreTheStrays() throws {
        let cats = (0..<30).map { Self.row($0, "the cat sat on the mat \($0)", "the cat purred \($0 % 3)") }
        let report = String(repeating: "stock prices fell sharply as the markets closed lower on friday. ", count: 2)
        let strays = (30..<36).map { Self.row($0, report + "question \($0)", "markets closed lower \($0 % 5)") }
        let agreement = try #require(Self.run([cats + strays]).targets[0].agreement)
        #expect(agreement.groups == 31 && agreement.rowGains.count == 36)
        let unhelped = Set(agreement.rowGains.indices.filter { agreement.rowGains[$0] <= 0 })
        #expect(unhelped.isSuperset(of: 30..<36), "unhelped: \(unhelped.sorted()), gains \(agreement.rowGains)")
        #expect(unhelped.intersection(0..<30).count <= 3, "cat rows unhelped: \(unhelped.sorted())")
        #expect(abs(agreement.helpedShare - Double(36 - unhelped.count) / 36) < 1e-12)
    }
}
