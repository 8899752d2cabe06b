import Foundation
import Selection
import Surrogate
import Testing
import ToVPipeline
@testable import Evaluation

/// The whole evaluation pipeline at CI size: a made-up target task and two unrelated sources, a tiny
/// surrogate, two LRs, two seeds. Checks the report's structure and that every number is finite.
@Suite("Evaluation pipeline (CI size)")
struct PipelineTests {
    static func writeData(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let sources: [(String, (Int) -> (String, String))] = [
            ("subtask900_ropes_toy_target", { ("question \($0 % 7): what colour is the sky", "blue sky \($0 % 3)") }),
            ("subtask901_drop_toy_numbers", { ("add \($0) and \($0 + 1)", "\(2 * $0 + 1)") }),
            ("subtask902_qasc_toy_facts", { ("fact \($0 % 11): plants need", "sunlight and water \($0 % 5)") }),
        ]
        for (name, make) in sources {
            var lines = ""
            for i in 0..<150 {
                let (prompt, response) = make(i)
                lines += "{\"prompt\": \"\(prompt)\", \"response\": \"\(response)\"}\n"
            }
            try lines.write(toFile: "\(directory)/\(name).jsonl", atomically: true, encoding: .utf8)
        }
    }

    /// Runs `body` with the made-up data written to a fresh directory `root` and ``smallOptions(root:)``
    /// pointing into it; the directory is removed afterwards.
    static func withSmallRun(_ body: (_ options: inout EvaluationOptions, _ root: String) throws -> Void) throws {
        let root = NSTemporaryDirectory() + "tovd-eval-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeData(to: root + "/data")
        var options = smallOptions(root: root)
        try body(&options, root)
    }

    static func smallOptions(root: String) -> EvaluationOptions {
        var options = EvaluationOptions(dataDirectory: root + "/data", target: "subtask900_ropes_toy_target", outputDirectory: root + "/out")
        options.cacheDirectory = root + "/cache"
        options.poolRows = 200
        options.zvalRows = 20
        options.testRows = 40
        options.pretrainRows = 60
        options.uSize = 40
        options.learningRates = [1e-3, 1e-4]
        options.seeds = 2
        options.surrogate = ModelConfig(layers: 1, width: 16, heads: 2, context: 32, vocabSize: 300)
        options.proxies = [ProxyShape(layers: 1, width: 16, heads: 2)]
        options.proxyContext = .tokens(48)
        options.policies = [.selection(.scoreRandom), .less, .lessAdam, .dsir, .randomLengthMatched, .random]
        options.theta0.maxSteps = 10
        options.theta0.evaluateEvery = 5
        options.proxyEpochs = 1
        options.epochs = 2
        options.lessDimensions = 64
        options.bootstrapPretrainSteps = 10
        return options
    }

    @Test func ciSizedRunProducesACompleteReport() throws {
        try Self.withSmallRun { options, root in
            options.proxies = [ProxyShape(layers: 1, width: 16, heads: 2), ProxyShape(layers: 2, width: 32, heads: 2)]
            let report = try ToVEvaluation(options: options).run(commandLine: "test")
            // Each policy from the pretrained θ0; the one that reads ToV scores (score_random) again from the
            // daemon's bootstrap θ0, through the same arms, proxies, LRs and seeds.
            let bootstrapArms = ["score_random (bootstrap θ0)"]
            #expect(Set(report.runs.map(\.policy)) == Set(options.policies.map(\.rawValue) + bootstrapArms + ["zval_only"]))
            #expect(report.runs.filter { $0.policy == bootstrapArms[0] }.count == 2 * 2 * 2 * 2)
            #expect(report.setup.settings["θ0 of the ToV selections"]?.contains("bootstrap (the daemon's default") == true)
            #expect(report.proxies == ["1×16", "2×32"])
            // One random draw per seed, in both arms: 2 seeds × 2 LRs × 2 proxies × 2 arms.
            #expect(report.runs.filter { $0.policy == "random" }.count == 2 * 2 * 2 * 2)
            #expect(report.runs.filter { $0.policy == "zval_only" }.count == 2 * 2 * 2)
            #expect(report.runs.allSatisfy { $0.testLoss.isFinite && $0.testLoss > 0 })
            // The uniform guess, then per proxy its θ0.
            #expect(report.references.count == 1 + 2)
            #expect(report.heldOut?.overlap.isZero == true)
            // Per proxy and θ0: score_random vs random and vs Z_val alone (primary), vs random (alone).
            #expect(report.analysis?.headlines.count == 2 * 2 * 3)
            #expect(report.analysis?.headlines.contains { $0.primary && $0.tuned.policy == bootstrapArms[0] && $0.tuned.baseline == "random" } == true)
            #expect(report.references.allSatisfy { $0.testLoss.isFinite })
            #expect(abs(report.references[0].testLoss - log(300)) < 1e-12)
            #expect(report.enrichment.count == options.policies.count + bootstrapArms.count)
            #expect(report.setup.budgetRows == 8)          // 5 % of the 160 scored rows
            #expect(report.costs?.map(\.method) == ["DSIR", "ToV", "LESS-like", "LESS (Adam)", "ToV (bootstrap θ0)", "random (length-matched)",
                                                    "ToV", "LESS-like", "LESS (Adam)", "ToV (bootstrap θ0)"])
            #expect(report.costs!.allSatisfy { $0.wallSeconds >= 0 && $0.flopsPerRow != nil && $0.reuse != nil })
            #expect(report.costs![2].bytesStored == (160 + 20) * 64 * 4 && report.costs![3].bytesStored == (160 + 20) * 64 * 4)
            // The bootstrap θ0's pretraining on U is counted on top of the trajectories.
            #expect(report.costs![4].flopsPerRow! > report.costs![1].flopsPerRow!)
            let markdown = MarkdownReport.render(try EvaluationReport.decode(Data(contentsOf: URL(fileURLWithPath: root + "/out/report.json"))))
            #expect(!markdown.contains("nan") && !markdown.lowercased().contains("inf "))
            #expect(markdown.contains("## Headline") && markdown.contains("## Gain by proxy size") && markdown.contains("## Cost per row"))
            #expect(markdown.contains("**zero overlap**"))
            #expect(!FileManager.default.fileExists(atPath: root + "/out/report.md") && !FileManager.default.fileExists(atPath: root + "/out/report.html"))
            #expect(report.setup.settings["θ0 (surrogate) 1×16"]?.contains("(cached)") == false)
            // Resuming reads every finished run back instead of training again, each seed's scores from
            // scores-seed<N>.json (no scoring, the costs as first measured), and θ0s from the cache.
            #expect((0..<options.seeds).allSatisfy { FileManager.default.fileExists(atPath: root + "/out/scores-seed\($0).json") })
            var stages = Set<String>()
            let again = try ToVEvaluation(options: options) { stage, _, _ in stages.insert(stage) }.run(commandLine: "test")
            #expect(!stages.isEmpty && !stages.contains { $0.contains("ToV scoring") || $0.contains("LESS") || $0.contains("bootstrap θ0") }, "\(stages)")
            #expect(again.costs == report.costs)
            #expect(again.scoreHistogram == report.scoreHistogram && again.enrichment == report.enrichment && again.lengths == report.lengths)
            // (runs.jsonl keeps ~15 significant digits: equal up to float formatting)
            #expect(again.runs.count == report.runs.count)
            for (a, b) in zip(again.runs, report.runs) { #expect(abs(a.testLoss - b.testLoss) < 1e-9) }
            #expect(again.setup.settings["θ0 (surrogate) 1×16"]?.contains("(cached)") == true)
            #expect(again.setup.settings["proxy θ0 2×32 ctx 48"]?.contains("(cached)") == true)
        }
    }

    /// A run whose stored scores predate `less_adam` (the sign feature's scores under `less` and
    /// `lessCost`) resumes with them and adds the Adam feature, keeping ToV's stored rows and every
    /// finished fine-tune.
    @Test func anOlderScoresFileGainsTheAdamFeatureAndKeepsTheRest() throws {
        try Self.withSmallRun { options, root in
            options.seeds = 1
            options.learningRates = [1e-3]
            options.policies = [.selection(.scoreRandom), .less, .random]
            options.scoringTheta0s = [.pretrained]
            let first = try ToVEvaluation(options: options).run(commandLine: "test")
            // Rewrite the scores file as the version before less_adam wrote it.
            let path = root + "/out/scores-seed0.json"
            var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            let sign = try #require((object.removeValue(forKey: "lessByFeature") as? [String: Any])?["sign"] as? [String: Any])
            object["less"] = sign["rows"]
            object["lessCost"] = sign["cost"]
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))

            options.policies = [.selection(.scoreRandom), .less, .lessAdam, .random]
            var stages = Set<String>()
            let again = try ToVEvaluation(options: options) { stage, _, _ in stages.insert(stage) }.run(commandLine: "test")
            #expect(stages.contains { $0.contains("LESS (Adam) gradients") } && !stages.contains { $0.contains("LESS-like gradients") }, "\(stages)")
            #expect(Array(again.costs!.prefix(2)) == first.costs!, "ToV's and the sign feature's costs as first measured")
            #expect(again.costs!.map(\.method) == ["ToV", "LESS-like", "LESS (Adam)"])
            for run in first.runs {
                #expect(again.runs.contains { $0.policy == run.policy && $0.draw == run.draw && abs($0.testLoss - run.testLoss) < 1e-9 })
            }
            #expect(again.runs.filter { $0.policy == "less_adam" }.count == 2)   // both arms
        }
    }

    /// Rerunning into the same --output with a setting that changes results must not return the old
    /// results; a narrower grid (fewer policies) is a resume.
    @Test func resumeRefusesOtherSettings() throws {
        try Self.withSmallRun { options, root in
            options.seeds = 1
            options.learningRates = [1e-3]
            options.policies = [.selection(.scoreRandom), .random]
            _ = try ToVEvaluation(options: options).run(commandLine: "test")

            for (change, field) in [({ (o: inout EvaluationOptions) in o.method = .B }, "method"),
                                    ({ $0.scoreFunction = .abs }, "scoreFunction"),
                                    ({ $0.uSize = 48 }, "uSize"),
                                    ({ $0.epochs = 1 }, "epochs"),
                                    ({ $0.surrogate = ModelConfig(layers: 1, width: 16, heads: 4, context: 32, vocabSize: 300) }, "surrogate"),
                                    ({ $0.theta0.maxSteps = 12 }, "theta0"),
                                    ({ $0.scoringTheta0s = [.bootstrap, .pretrained] }, "scoringTheta0s"),
                                    ({ $0.bootstrapPretrainSteps = 11 }, "bootstrapPretrainSteps")] {
                var other = options
                change(&other)
                #expect(throws: EvaluationError.self, "changing \(field) must be refused") { try ToVEvaluation(options: other).run(commandLine: "test") }
                do { _ = try ToVEvaluation(options: other).run(commandLine: "test") } catch {
                    #expect("\(error)".contains(field) && "\(error)".contains("another --output"), "\(error)")
                }
            }
            var narrower = options
            narrower.policies = [.random]
            // One random draw per arm, and Z_val alone.
            #expect(try ToVEvaluation(options: narrower).run(commandLine: "test").runs.count == 3)
            // θ0s after the first only add cells: fewer of them is a resume too.
            var fewerTheta0s = options
            fewerTheta0s.scoringTheta0s = [.pretrained]
            #expect(try ToVEvaluation(options: fewerTheta0s).run(commandLine: "test").runs.count == 3 + 2)
        }
    }

    /// score_random with another share of the budget by score (issue 27's candidate): at ½ it is
    /// score_random itself (same rows, so the same fine-tunes); other shares run beside it from every θ0.
    @Test func scoreShareVariantsRunBesideScoreRandom() throws {
        #expect(EvaluationPolicy(rawValue: "score_random@0.25") == .scoreShare(0.25))
        #expect(EvaluationPolicy(rawValue: "score_random@1.5") == nil && EvaluationPolicy(rawValue: "score_random@x") == nil)
        try Self.withSmallRun { options, root in
            options.seeds = 1
            options.learningRates = [1e-3]
            options.policies = [.selection(.scoreRandom), .scoreShare(0.5), .scoreShare(0.25), .random]
            let report = try ToVEvaluation(options: options).run(commandLine: "test")
            func losses(_ policy: String) -> [Double] {
                report.runs.filter { $0.policy == policy }.sorted { ($0.arm ?? "", $0.seed) < ($1.arm ?? "", $1.seed) }.map(\.testLoss)
            }
            #expect(!losses("score_random").isEmpty && losses("score_random@0.5") == losses("score_random"))
            #expect(losses("score_random@0.25").count == 2 && losses("score_random@0.25 (bootstrap θ0)").count == 2)
            #expect(report.analysis?.comparisons.contains { $0.policy == "score_random@0.25" && $0.baseline == "random" } == true)
        }
    }

    /// Issue 27's candidates added to a finished run: cross-fitted ToV is scored for the seed (the finished
    /// cells kept), from every θ0, with its cost; score_dsir and the `+diverse` variants select from the
    /// stored scores.
    @Test func crossFittedAndScoreDSIRCandidatesExtendAFinishedRun() throws {
        #expect(EvaluationPolicy(rawValue: "crossfit") == .crossFitted(2) && EvaluationPolicy(rawValue: "crossfit@4") == .crossFitted(4))
        #expect(EvaluationPolicy.crossFitted(2).rawValue == "crossfit" && EvaluationPolicy.crossFitted(4).rawValue == "crossfit@4")
        #expect(EvaluationPolicy(rawValue: "crossfit@1") == nil && EvaluationPolicy(rawValue: "score_dsir") == .selection(.scoreDSIR))
        #expect(EvaluationPolicy(rawValue: "score_dsir+diverse") == .diverse(.scoreDSIR) && EvaluationPolicy.diverse(.scoreOnly).rawValue == "score_only+diverse")
        #expect(EvaluationPolicy(rawValue: "random+diverse") == nil && EvaluationPolicy(rawValue: "uncertainty+diverse") == nil)
        try Self.withSmallRun { options, root in
            options.seeds = 1
            options.learningRates = [1e-3]
            options.policies = [.selection(.scoreRandom), .random]
            let first = try ToVEvaluation(options: options).run(commandLine: "test")
            options.policies = [.selection(.scoreRandom), .random, .crossFitted(2), .crossFitted(3), .selection(.scoreDSIR), .diverse(.scoreDSIR)]
            let extended = try ToVEvaluation(options: options).run(commandLine: "test")
            for label in ["crossfit", "crossfit@3", "score_dsir", "crossfit (bootstrap θ0)", "score_dsir (bootstrap θ0)", "score_dsir+diverse",
                          "score_dsir+diverse (bootstrap θ0)"] {
                #expect(extended.runs.filter { $0.policy == label }.count == 2, "\(label)")
            }
            for run in first.runs {
                #expect(extended.runs.contains { $0.policy == run.policy && $0.arm == run.arm && $0.seed == run.seed && abs($0.testLoss - run.testLoss) < 1e-9 })
            }
            // The text clusters each selection spans are reported once a +diverse policy computed them.
            #expect(first.enrichment.allSatisfy { $0.clusters == nil })
            let diverse = try #require(extended.enrichment.first { $0.policy == "score_dsir+diverse" })
            #expect((diverse.clusters ?? 0) > 0 && (diverse.largestCluster ?? 0) >= 1 && diverse.largestCluster! <= diverse.selection)
            let costs = Dictionary(extended.costs!.map { ($0.method, $0.flopsPerRow!) }, uniquingKeysWith: { a, _ in a })
            #expect(costs["ToV cross-fitted, 3 folds"]! > costs["ToV cross-fitted, 2 folds"]!)
            #expect(costs["ToV cross-fitted, 2 folds (bootstrap θ0)"]! > costs["ToV cross-fitted, 2 folds"]!, "the bootstrap's pretraining counts")

            let stored = try #require(ToVEvaluation.SeedScores.load(directory: options.outputDirectory, seed: 0))
            #expect(Set(stored.crossFitted.keys) == ["pretrained@2", "pretrained@3", "bootstrap@2", "bootstrap@3"])
            #expect(stored.crossFitted["pretrained@2"]!.rows.map(\.id) == stored.tov.map(\.id))
            #expect(stored.crossFitted["pretrained@2"]!.rows.map(\.score) != stored.tov.map(\.score))
        }
    }

    /// The candidate θ0s of issue 25 (items 3 and 6) added to a finished run: each selects through the
    /// same arms, its bootstrap pretraining counted in its cost, and the finished cells are kept.
    @Test func candidateTheta0sExtendAFinishedRun() throws {
        try Self.withSmallRun { options, root in
            options.seeds = 1
            options.learningRates = [1e-3]
            options.policies = [.selection(.scoreRandom), .random]
            options.scoringTheta0s = [.pretrained]
            let first = try ToVEvaluation(options: options).run(commandLine: "test")
            options.scoringTheta0s = [.pretrained, .pretrainedScoringLayout, .bootstrapPool, .bootstrapLong]
            var stages = Set<String>()
            let extended = try ToVEvaluation(options: options) { stage, _, _ in stages.insert(stage) }.run(commandLine: "test")
            let labels = ["score_random (pretrained-scoring θ0)", "score_random (bootstrap-pool θ0)", "score_random (bootstrap-4x θ0)"]
            for label in labels { #expect(extended.runs.filter { $0.policy == label }.count == 2, "\(label)") }
            for run in first.runs {
                #expect(extended.runs.contains { $0.policy == run.policy && $0.arm == run.arm && $0.seed == run.seed && abs($0.testLoss - run.testLoss) < 1e-9 })
            }
            #expect(!stages.contains { $0.contains("ToV scoring") && !$0.contains("θ0)") }, "the first θ0's scores are read back: \(stages)")
            let costs = Dictionary(extended.costs!.map { ($0.method, $0.flopsPerRow!) }, uniquingKeysWith: { a, _ in a })
            #expect(costs["ToV (bootstrap-4x θ0)"]! > costs["ToV (bootstrap-pool θ0)"]!)
            #expect(costs["ToV (bootstrap-pool θ0)"]! > costs["ToV"]!)
            #expect(costs["ToV (pretrained-scoring θ0)"] == costs["ToV"])
            #expect(extended.setup.settings["θ0 of the ToV selections"]?.contains("tokenizer learned on the whole pool") == true)
        }
    }

    /// Method B's θ_val trajectory must start where θ_bas starts (θ0, fresh optimizer state) and see U
    /// in the same order: with an empty Z_val it then equals θ_bas at every epoch, so every φ is 0.
    @Test func methodBTrajectoriesStartFromTheSameState() throws {
        var options = EvaluationOptions(dataDirectory: "", target: "", outputDirectory: "")
        options.method = .B
        options.epochs = 2
        // U of 160 rows of 32 tokens spans two batches of 4,096 tokens, so the shuffle order matters.
        options.uSize = 160
        let config = ModelConfig(layers: 1, width: 16, heads: 2, context: 32, vocabSize: 300)
        options.surrogate = config
        let pool = (0..<192).map { i in
            RowText(id: Int64(i), prompt: Array("prompt \(i * 31 % 97) of row \(i), \(i * 7 % 13) twice".utf8),
                    response: Array("response \(i % 17) and \(i * 3 % 29) or \(i)".utf8))
        }
        let tokenizer = Tokenizer.train(sample: pool.map { $0.prompt + $0.response }, vocabSize: 300)
        let theta0 = Theta0(tokenizer: tokenizer, model: Model(config: config, seed: 3))
        let scores = ToVEvaluation(options: options).scores(seed: 1, theta0: .pretrained, from: .given(theta0), pool: pool, zval: [])
        #expect(scores.rows.count == 32)
        // 0 up to float noise: tests running at once switch OpenBLAS's process-wide thread count, which
        // moves a loss by ~1e-7; a different order or optimizer state moves φ by far more.
        #expect(scores.rows.allSatisfy { abs($0.score) < 1e-5 }, "\(scores.rows.filter { $0.score != 0 }.map { ($0.id, $0.score) })")
    }

    /// `--theta0-file`: a θ0 checkpoint selects as the daemon would after `tovd base import` of it. Given
    /// the evaluation's own pretrained θ0 as the file, its selections (and so every fine-tune) equal the
    /// pretrained θ0's; a file that changed under a run is refused.
    @Test func anImportedTheta0SelectsAsTheSameθ0Pretrained() throws {
        try Self.withSmallRun { options, root in
            options.policies = [.selection(.scoreRandom), .random]
            options.seeds = 1
            options.learningRates = [1e-3]
            options.scoringTheta0s = [.pretrained]
            options.proxies = [ProxyShape(layers: 2, width: 16, heads: 2)]   // its θ0 cached apart from the surrogate's 1×16
            _ = try ToVEvaluation(options: options).run(commandLine: "test")
            let cached = try FileManager.default.contentsOfDirectory(atPath: root + "/cache")
                .filter { $0.hasPrefix("theta0-1x16-") && $0.hasSuffix(".tovckpt") }
            try #require(cached.count == 1)
            let file = root + "/cache/" + cached[0]
            options.outputDirectory = root + "/imported"
            options.scoringTheta0s = [.pretrained, .imported]
            options.importedTheta0 = ImportedTheta0(path: file, sha256: try SHA256.hexDigest(ofFile: URL(fileURLWithPath: file)))
            let report = try ToVEvaluation(options: options).run(commandLine: "test")
            let plain = report.runs.filter { $0.policy == "score_random" }.sorted { ($0.arm ?? "", $0.seed) < ($1.arm ?? "", $1.seed) }
            let imported = report.runs.filter { $0.policy == "score_random (imported θ0)" }.sorted { ($0.arm ?? "", $0.seed) < ($1.arm ?? "", $1.seed) }
            #expect(!plain.isEmpty && plain.map(\.testLoss) == imported.map(\.testLoss))
            #expect(report.setup.settings["θ0 of the ToV selections"]?.contains("imported (the checkpoint \(cached[0])") == true)

            options.outputDirectory = root + "/changed"
            options.importedTheta0?.sha256 = String(repeating: "0", count: 64)
            let error = #expect(throws: EvaluationError.self) { try ToVEvaluation(options: options).run(commandLine: "test") }
            #expect(error?.description.contains("changed since this run began") == true)
        }
    }

    @Test func targetShareAddsTheTargetsOtherRowsToThePool() throws {
        try Self.withSmallRun { options, root in
            #expect(try ToVEvaluation(options: options).loadSplit().pool.filter(\.isTarget).isEmpty)
            options.targetShare = 0.1
            let split = try ToVEvaluation(options: options).loadSplit()
            let target = split.pool.filter(\.isTarget)
            #expect(target.count == 22)                      // 0.1 / 0.9 × 200, rounded
            #expect(split.pool.count == 222)
            #expect(split.zval.count == 20 && split.test.count == 40)
            // The oracle selects the pool's target rows outside U, and nothing else.
            options.targetShare = 0.1
            options.seeds = 1
            options.learningRates = [1e-3]
            options.policies = [.oracle, .random]
            options.scoringTheta0s = [.pretrained]
            let report = try ToVEvaluation(options: options).run(commandLine: "test")
            let oracle = try #require(report.enrichment.first { $0.policy == "oracle" })
            #expect(oracle.selection > 0 && oracle.targetInSelection == oracle.selection && oracle.selection <= oracle.targetInPool)
            #expect(report.runs.filter { $0.policy == "oracle" }.count == 2)
            options.targetShare = 0.45
            #expect(throws: EvaluationError.self) { try ToVEvaluation(options: options).loadSplit() }
        }
    }

    /// No data yet: the error says how to get it, for `tovd evaluate` and `tovd bench bootstrap` alike.
    @Test func aMissingDataDirectorySaysHowToFetchIt() {
        let options = EvaluationOptions(dataDirectory: "/nonexistent-\(UUID().uuidString)", target: "subtask061_ropes_answer_generation", outputDirectory: "")
        do {
            _ = try ToVEvaluation(options: options).rows()
            Issue.record("a missing data directory was read")
        } catch {
            #expect(error is EvaluationError && "\(error)".contains("tovd data fetch bigbench-ni"), "\(error)")
        }
    }

    /// Issue 26, item 6: two toy targets scored at once on one pool give each target the φ and
    /// selection of a run for it alone, at (1 + K)/2K of the forward passes; the pool holds no row of
    /// either target's dataset; a rerun resumes from the stored seeds and other settings are refused.
    @Test func twoTargetsScoredAtOnceMatchEachAlone() throws {
        try Self.withSmallRun { options, root in
            options.scoringTheta0s = [.bootstrap]
            let check = try SharedScoringCheck(options: options, otherTargets: ["subtask901_drop_toy_numbers"])
            let report = try check.run(commandLine: "test")
            #expect(report.seeds.count == 2 && report.targets == ["subtask900_ropes_toy_target", "subtask901_drop_toy_numbers"])
            #expect(report.passRatio == 0.75, "(1 + 2)·L against 2·2·L passes per row")
            for seed in report.seeds {
                #expect(seed.sharedPasses * 4 == seed.alonePasses * 3)
                for target in seed.targets {
                    #expect(target.maxAbsPhiDifference < 1e-4, "\(target)")
                    #expect(target.sameSelection, "\(target)")
                }
                // The pool: the qasc rows alone (ropes is the first target's dataset, drop the second's).
                #expect(seed.scoredRows == report.poolRows - options.uSize && report.poolRows <= 150)
            }
            let again = try check.run(commandLine: "test")
            #expect(again.seeds.map(\.sharedSeconds) == report.seeds.map(\.sharedSeconds), "the stored seeds are read back")
            options.epochs = 1
            #expect(throws: EvaluationError.self) {
                try SharedScoringCheck(options: options, otherTargets: ["subtask901_drop_toy_numbers"]).run(commandLine: "test")
            }
            #expect(throws: EvaluationError.self) { try SharedScoringCheck(options: options, otherTargets: [options.target]) }
        }
    }

    /// Issue 27: the Z_val signal study on toy data. Every Z_val of the study (each size clean and with
    /// its off-target share) is a target of one pipeline run per seed on U and the signal's sample; the
    /// largest clean one is the reference; a rerun resumes and other sizes are refused.
    @Test func theZvalSignalStudyMeasuresEverySizeCleanAndNoisy() throws {
        try Self.withSmallRun { options, root in
            options.scoringTheta0s = [.bootstrap]
            let study = try ZvalSignalStudy(options: options, sizes: [20, 8], offTargetShare: 0.25)
            let report = try study.run(commandLine: "test")
            #expect(report.summaries.map(\.arm.label) == ["|Z_val| 8", "|Z_val| 20", "|Z_val| 8, 2 off-target", "|Z_val| 20, 5 off-target"])
            #expect(report.separations.count == 3 * 3 && report.seeds.count == 2)
            for seed in report.seeds {
                #expect(seed.results[1].phiVersusReference == 1, "the largest clean Z_val is the reference")
                for result in seed.results {
                    let agreement = try #require(result.agreement)
                    #expect(agreement.groups >= 2 && agreement.halfRows >= 1 && agreement.halfRows <= result.arm.zvalRows / 2)
                    #expect(agreement.sampleRows == min(ZvalAgreement.sampleSize, report.poolRows - options.uSize))
                    #expect(agreement.halves.isFinite && abs(agreement.agreement) <= 1)
                    #expect(result.targetRowsUnhelped != nil && (result.offTargetRowsUnhelped != nil) == (result.arm.offTargetRows > 0))
                }
            }
            let again = try study.run(commandLine: "test")
            #expect(again.seeds.map(\.seconds) == report.seeds.map(\.seconds), "the stored seeds are read back")
            #expect(throws: EvaluationError.self) { try ZvalSignalStudy(options: options, sizes: [20, 10], offTargetShare: 0.25).run(commandLine: "test") }
            #expect(throws: EvaluationError.self) { try ZvalSignalStudy(options: options, sizes: [2, 20], offTargetShare: 0.25) }
        }
    }
}
