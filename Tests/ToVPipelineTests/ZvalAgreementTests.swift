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

    static func run(_ zvals: [[RowText]]) -> PipelineRun.Result {
        var pipeline = PipelineRun(model: config, settings: TrajectorySettings(epochs: 2, learningRate: 0.01, valLearningRateRatio: 0.1,
                                                                                pretrainSteps: 5, seed: 3),
                                   uSize: 150, method: .A, scoreFunction: .improvement)
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
        #expect(agreement.halves == 1 && agreement.agreement == 1 && agreement.reliability == 1)
        #expect(agreement.halfRows == 20 && agreement.sampleRows == 250)
        #expect(result.targets[1].agreement == nil)

        let sampleIDs = Set(ZvalAgreement.sampleIDs(ids: Self.pool.map(\.id), uSize: 150, seed: 3))
        let inU = Set(result.u)
        #expect(sampleIDs.count == 250 && sampleIDs.isDisjoint(with: inU))
        let u = Self.pool.filter { inU.contains($0.id) }.sorted { $0.id < $1.id }
        let direct = ZvalAgreement.measure(base: result.finalBase, tokenizer: result.theta0.tokenizer, zval: same, u: u,
                                           sample: Self.pool.filter { sampleIDs.contains($0.id) },
                                           trajectory: Trajectory(settings: TrajectorySettings(epochs: 2, learningRate: 0.01, valLearningRateRatio: 0.1,
                                                                                               pretrainSteps: 5, seed: 3)),
                                           scoring: Model.ScoringOptions(precision: .fp32))
        #expect(direct == agreement)
    }

    /// A Z_val of one task says one thing about the pool; a Z_val whose rows are each about something
    /// else (no two alike) says a different thing in each half.
    @Test func aCoherentZvalAgreesMoreThanAnIncoherentOne() throws {
        let coherent = (0..<40).map { Self.row($0, String(repeating: "the cat sat on the mat \($0 % 5). ", count: 2), "the cat purred \($0 % 3)") }
        let words = ["zebra", "quartz", "violin", "harbor", "glacier", "pepper", "lantern", "orbit", "meadow", "copper"]
        let incoherent = (0..<40).map { i in
            Self.row(i, "\(words[i % 10]) \(words[(i * 3 + 1) % 10]) \(words[(i * 7 + 2) % 10]) \(i)", "\(words[(i + 5) % 10]) \(i * 17)")
        }
        let result = Self.run([coherent, incoherent])
        let a = try #require(result.targets[0].agreement), b = try #require(result.targets[1].agreement)
        #expect(a.agreement > b.agreement + 0.05 && a.halves > b.halves, "coherent \(a), incoherent \(b)")
    }
}
