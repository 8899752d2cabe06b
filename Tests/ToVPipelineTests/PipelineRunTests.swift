import Foundation
import Logging
import Selection
import Surrogate
import Testing
@testable import Daemon
@testable import ToVPipeline

/// The pipeline in memory (what `tovd evaluate` runs) against itself and against the daemon's trainer
/// and scorer run in-process on the same rows (checkpoints and all, no database).
@Suite("One ToV pipeline")
struct PipelineRunTests {
    static let config = ModelConfig(layers: 1, width: 16, heads: 2, context: 32, vocabSize: 300)

    /// 200 rows on two topics (ids 101...300) and Z_val on one of them. Rows fill the 32-token context,
    /// so U (150 rows) and Z_val (140) each span two training batches of 4,096 tokens: every epoch's
    /// data order then shows in the weights, not just in the rounding.
    static func rows() -> (pool: [RowText], zval: [RowText]) {
        let pool = (0..<200).map { i in
            let (prompt, response, source) = i % 2 == 0
                ? (String(repeating: "the cat sat on the mat \(i % 13). ", count: 4), "the cat purred \(i % 7)", "cats")
                : (String(repeating: "stock prices fell sharply \(i % 11). ", count: 4), "markets closed lower \(i % 5)", "finance")
            return RowText(id: Int64(101 + i), prompt: Array(prompt.utf8), response: Array(response.utf8), source: source)
        }
        let zval = (0..<140).map {
            RowText(id: Int64($0), prompt: Array(String(repeating: "the cat sat, ", count: 8).utf8), response: Array("on the mat \($0)".utf8))
        }
        return (pool, zval)
    }

    static func settings(seed: Int64 = 4) -> TrajectorySettings {
        TrajectorySettings(epochs: 2, learningRate: 0.01, valLearningRateRatio: 0.1, pretrainSteps: 5, seed: seed)
    }

    /// fp32, not the default bf16 (where the CPU has it): these tests hold the pipeline's steps to each
    /// other at float noise (1e-5), and bf16 turns the ~1e-7 noise of training under another OpenBLAS
    /// thread count (other suites change it) into ~1e-4 by rounding some weights the other way.
    static let scoring = Model.ScoringOptions(precision: .fp32)

    static func run(_ method: TrajectoryMethod, seed: Int64 = 4, theta0: Theta0.Choice = .bootstrap) -> PipelineRun.Result {
        let (pool, zval) = rows()
        var pipeline = PipelineRun(model: config, settings: settings(seed: seed), uSize: 150, method: method, scoreFunction: .improvement)
        pipeline.scoring = scoring
        return pipeline.run(pool: pool, zval: zval, theta0: theta0)
    }

    @Test func theDaemonsDefaultsAreTheDaemonsSettings() {
        let daemon = BaseModelConfig(settings: Settings()).trajectory
        #expect(daemon == TrajectorySettings.daemonDefaults)
    }

    /// A candidate bootstrap is the daemon's recipe with one thing changed: on U for the same steps it is
    /// the daemon's θ0 to the bit; on the pool or for more steps it is another θ0.
    @Test func aBootstrapVariantChangesOnlyWhatItNames() {
        let daemon = Self.run(.A)
        let same = Self.run(.A, theta0: .bootstrapVariant(.init(corpus: .u, pretrainSteps: Self.settings().pretrainSteps)))
        #expect(daemon.theta0.model.parameters == same.theta0.model.parameters)
        #expect(zip(daemon.rows, same.rows).allSatisfy { $0.score == $1.score })
        let pool = Self.run(.A, theta0: .bootstrapVariant(.init(corpus: .pool, pretrainSteps: Self.settings().pretrainSteps)))
        let longer = Self.run(.A, theta0: .bootstrapVariant(.init(corpus: .u, pretrainSteps: 2 * Self.settings().pretrainSteps)))
        #expect(pool.theta0.model.parameters != daemon.theta0.model.parameters)
        #expect(longer.theta0.model.parameters != daemon.theta0.model.parameters)
        #expect(pool.u == daemon.u && longer.rows.map(\.id) == daemon.rows.map(\.id), "U and the scored rows do not depend on θ0")
    }

    @Test func scoresEveryRowOutsideUDeterministically() {
        let first = Self.run(.A), again = Self.run(.A)
        let pool = Self.rows().pool
        #expect(first.u == UDraw.draw(ids: pool.map(\.id), size: 150, seed: 4))
        #expect(first.rows.map(\.id) == pool.map(\.id).filter { !first.u.contains($0) })
        #expect(zip(first.rows, again.rows).allSatisfy { $0.id == $1.id && abs($0.score - $1.score) < 1e-5 }, "same rows and settings, same φ")
        for (row, (base, val)) in zip(first.rows, zip(first.baseLosses, first.valLosses)) {
            #expect(base.losses.count == 2 && val.count == 2)
            #expect(row.score == tovScore(baseLosses: base.losses.map(Double.init), valLosses: val.map(Double.init), function: .improvement))
            #expect(row.length == base.tokens && row.length > 0)
        }
        #expect(first.rows.contains { $0.score != 0 }, "θ_val moved away from θ_bas")
        #expect(Self.run(.B).rows != first.rows, "Method B is another trajectory")
        let selection = first.select(SelectionSettings(budget: .rows(10), bins: 2, seed: 4))
        #expect(selection.ids.count == 10 && Set(selection.ids).isDisjoint(with: first.u))
    }

    /// A given θ0 (the hook an imported base uses) is taken as is, tokenizer and weights.
    @Test func aGivenTheta0IsUsedAsIs() {
        let bootstrap = Self.run(.A)
        let given = Self.run(.A, theta0: .given(bootstrap.theta0))
        #expect(zip(given.rows, bootstrap.rows).allSatisfy { abs($0.score - $1.score) < 1e-5 })
        #expect(given.theta0Seconds == 0)
        let other = Theta0(tokenizer: bootstrap.theta0.tokenizer, model: Model(config: Self.config, seed: 99))
        #expect(Self.run(.A, theta0: .given(other)).rows != bootstrap.rows)
    }


    /// Several targets on one pool (what a daemon with several targets computes, issue 26): each target's
    /// φ is a run for its Z_val alone, with the base trajectory and each row's base losses computed once.
    @Test(arguments: [TrajectoryMethod.A, .B])
    func severalTargetsAtOnceScoreAsEachAlone(_ method: TrajectoryMethod) {
        let (pool, cats) = Self.rows()
        let finance = (0..<60).map {
            RowText(id: Int64($0), prompt: Array(String(repeating: "stock prices, ", count: 8).utf8), response: Array("fell \($0)".utf8))
        }
        var pipeline = PipelineRun(model: Self.config, settings: Self.settings(), uSize: 150, method: method, scoreFunction: .improvement)
        pipeline.scoring = Self.scoring
        let together = pipeline.run(pool: pool, zvals: [cats, finance], theta0: .bootstrap)
        let alone = [pipeline.run(pool: pool, zval: cats, theta0: .bootstrap), pipeline.run(pool: pool, zval: finance, theta0: .bootstrap)]
        #expect(together.targets.count == 2)
        for (k, single) in alone.enumerated() {
            #expect(together.targets[k].rows.map(\.id) == single.rows.map(\.id))
            #expect(zip(together.targets[k].rows, single.rows).allSatisfy { abs($0.score - $1.score) < 1e-5 }, "target \(k)'s φ is its run alone")
        }
        #expect(zip(together.baseLosses, alone[1].baseLosses).allSatisfy { $0.losses == $1.losses }, "one base trajectory, whatever the targets")
        #expect(together.targets[0].rows != together.targets[1].rows, "each target's θ_val is its own")
        let scored = together.rows.count
        #expect(together.scoringPasses == 3 * 2 * scored && alone[0].scoringPasses == 2 * 2 * scored, "(1 + K)·L passes per row, 2L alone")
    }
    /// The daemon's trainer (θ0 and θ_bas^1..L stored as checkpoints, θ_val^1..L trained from the
    /// decoded ones) and its scorer (``LoadedVersion``) give the in-memory pipeline's losses, for both
    /// methods. The database part is `OnePipelineTests` (IntegrationTests).
    @Test(arguments: [TrajectoryMethod.A, .B])
    func theDaemonsTrainerAndScorerAgreeWithThePipeline(_ method: TrajectoryMethod) async throws {
        try await trainerAgreesWithThePipeline(method: method, precision: .fp32)
    }

    /// `tovd run --training-precision bf16` reaches θ0's bootstrap and both trajectories: the trainer
    /// gives the bf16 pipeline's losses, which are not the fp32 pipeline's.
    @Test(.enabled(if: ScoringPrecision.isAvailable(.bf16), "needs AVX-512 BF16"))
    func theDaemonsTrainerTrainsInItsHostsPrecision() async throws {
        let bf16 = try await trainerAgreesWithThePipeline(method: .A, precision: .bf16)
        let fp32 = try await trainerAgreesWithThePipeline(method: .A, precision: .fp32)
        #expect(zip(bf16, fp32).contains { $0.losses != $1.losses }, "bf16 trained as fp32")
    }

    /// The trainer's checkpoints scored by ``LoadedVersion`` against the in-memory pipeline with the same
    /// training precision; returns the θ_bas losses.
    @discardableResult
    func trainerAgreesWithThePipeline(method: TrajectoryMethod, precision: TrainingPrecision) async throws -> [BaseLossRecord] {
        let (pool, zval) = Self.rows()
        var settings = Settings()
        settings.surrogate = .init()
        settings.surrogate.layers = 1; settings.surrogate.width = 16; settings.surrogate.heads = 2
        settings.surrogate.context = 32; settings.surrogate.vocab = 300
        settings.epochs = 2; settings.learningRate = 0.01; settings.pretrainSteps = 5; settings.selection.seed = 4
        let config = BaseModelConfig(settings: settings)
        #expect(config.trajectory == Self.settings())

        var trajectory = config.trajectory
        trajectory.trainingPrecision = precision
        var pipeline = PipelineRun(model: Self.config, settings: trajectory, uSize: 150, method: method, scoreFunction: .improvement)
        pipeline.scoring = Self.scoring
        let expected = pipeline.run(pool: pool, zval: zval, theta0: .bootstrap)
        let inU = Set(expected.u)
        // The trainer reads U in candidate id order, its ids renumbered (Trainer.loadU).
        let u = pool.filter { inU.contains($0.id) }.enumerated().map {
            RowText(id: Int64($0.offset), prompt: $0.element.prompt, response: $0.element.response, source: $0.element.source)
        }
        let stored = Checkpoints()
        let trainer = TrajectoryTrainer(config: config, logger: Logger(label: "test"), precision: precision)
        try await trainer.trainBase(u: u) { kind, epoch, bytes in stored.add("\(kind)/\(epoch)", bytes) }
        try await trainer.trainVal(theta0: stored["theta0/0"], base: [stored["base/1"], stored["base/2"]], zval: zval, u: u, method: method) {
            epoch, bytes in stored.add("val/\(epoch)", bytes)
        }
        let version = try LoadedVersion(modelVersion: 1, baseVersion: 1,
                                        base: try [1, 2].map { try SurrogateCheckpoint.decode(stored["base/\($0)"]) },
                                        val: try [1, 2].map { try SurrogateCheckpoint.decode(stored["val/\($0)"]) },
                                        importanceModel: NgramImportance(bytes: NgramImportance(zval: zval, u: u).bytes))
        let scored = pool.filter { !inU.contains($0.id) }
        let base = try version.baseLosses(scored, options: Self.scoring)
        let val = try version.valLosses(scored, options: Self.scoring)
        // Equal up to float noise (~1e-7: other tests running at once switch OpenBLAS's process-wide thread
        // count); one epoch's seed off by one moves them by ~1e-4.
        func close(_ a: [Float], _ b: [Float]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-5 } }
        #expect(base.count == expected.baseLosses.count && val.count == expected.valLosses.count)
        #expect(zip(base, expected.baseLosses).allSatisfy { close($0.losses, $1.losses) && $0.tokens == $1.tokens }, "θ_bas losses")
        #expect(zip(val, expected.valLosses).allSatisfy { close($0, $1) }, "θ_val losses")
        // score_dsir's weights: the trainer's model of Z_val and U, stored and read back, weighs each
        // row as the pipeline does.
        #expect(zip(scored, expected.rows).allSatisfy { version.importance($0) == $1.importance }, "importance weights")
        #expect(expected.rows.contains { $0.importance != 0 })
        return base
    }
}

/// Checkpoints the trainer stored, by "kind/epoch".
final class Checkpoints: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [String: [UInt8]] = [:]
    func add(_ name: String, _ data: [UInt8]) { lock.withLock { bytes[name] = data } }
    subscript(name: String) -> [UInt8] { lock.withLock { bytes[name]! } }
}
