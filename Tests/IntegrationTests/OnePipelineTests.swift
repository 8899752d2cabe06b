import Daemon
import Foundation
import PQ
import Selection
import Surrogate
import Testing
import ToVPipeline
import TovTesting

/// What ships is what is evaluated (DESIGN.md §8): the real daemon bootstraps, scores and selects a
/// small pool in PostgreSQL; the evaluation's scoring (ToVPipeline's ``PipelineRun``) runs on the same
/// rows and settings in memory; both give the same U, the same losses and φ per row (to float
/// tolerance: the daemon scores in batches of 16 and derives φ in SQL) and the same selection.
/// (Breaking either side's U draw or an epoch's seed fails it: both were tried.)
@Suite("One ToV pipeline: daemon = evaluation", .serialized)
struct OnePipelineTests {
    @Test func theDaemonAndTheEvaluationScoreAndSelectAlike() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            // A seed other than the default, so a seed used differently on either side shows. Rows fill
            // the 32-token context, so U (150 rows) and Z_val (140) each span two training batches of
            // 4,096 tokens and every epoch's data order changes the weights, not just the rounding. 115 rows
            // of each topic leave 80 outside U: enough for the Z_val signal's sample (64 at least).
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 150, budgetRows: 10, bins: 2)
                + "UPDATE tov.settings SET value = '7' WHERE key = 'seed';")
            let cats = String(repeating: "the cat sat on the mat and looked at the garden. ", count: 3)
            let markets = String(repeating: "stock prices fell sharply as the markets closed. ", count: 3)
            // Responses of different words and lengths: the Z_val signal ranks the rows outside U by how
            // much each nudge lowers their loss, which needs rows that differ in more than a number.
            for (prefix, source) in [(cats, "cats"), (markets, "finance")] {
                try await c.execute("""
                    INSERT INTO tov.candidates (prompt, response, source)
                    SELECT $1 || ' prompt ' || g,
                           (ARRAY['purred', 'slept', 'rose', 'jumped', 'fell', 'hid', 'sat', 'closed'])[1 + g % 8] || ' '
                               || repeat(chr(97 + g % 26) || ' ', 1 + g % 5) || g, $2
                    FROM generate_series(1, 115) g
                    """, [prefix, source])
            }
            try await c.execute("""
                INSERT INTO tov.validation (prompt, response)
                SELECT repeat('the cat sat on the mat, ', 6), 'on the mat ' || g FROM generate_series(1, 140) g
                """)

            // Both sides score in fp32, not the default bf16 (where the CPU has it; both take the same
            // default, PrecisionChoiceTests): φ are compared at float noise, and bf16 would turn the ~1e-7
            // difference of training in another process with another thread count into ~1e-4.
            let daemon = try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2", "--batch-size", "16",
                                          "--scoring-precision", "fp32"], conninfo: conninfo)
            defer { daemon.terminate() }
            let done = try await TovTestDatabase.eventually(timeout: .seconds(240)) {
                let s = try await StatusReport.load(on: c)
                guard s.modelVersion != nil && s.pending == 0 && s.rescorePending == 0 && s.selected == 10 else { return false }
                // The Z_val signal is measured after the switch.
                return try await c.query("SELECT 1 FROM tov.model_versions WHERE status = 'complete' AND zval_signal_measured_at IS NOT NULL")
                    .first != nil
            }
            try #require(done, "\(daemon.log.suffix(3000))")

            // What the daemon did.
            let settings = try await SettingsCache.load(on: c)
            let base = try await c.query("SELECT base_version, config::text FROM tov.base_models WHERE status = 'complete'").first!
            let baseVersion = Int(try base.get(Int32.self, 0))
            let config = try BaseModelConfig(json: try base.get(String.self, 1))
            let daemonU = try await c.query("SELECT candidate_id FROM tov.base_subset WHERE base_version = $1 ORDER BY candidate_id", [baseVersion])
                .map { try $0.get(Int64.self, 0) }
            var daemonScores: [Int64: (score: Double, base: [Float], val: [Float], tokens: Int, importance: Double)] = [:]
            for row in try await c.query("""
                SELECT s.candidate_id, s.score, s.base_losses, s.val_losses, s.tokens, s.importance FROM tov.scores s
                JOIN tov.model_versions m USING (model_version) WHERE m.status = 'complete'
                """) {
                daemonScores[try row.get(Int64.self, 0)] = (try row.get(Double.self, 1), try row.get([Float].self, 2),
                                                           try row.get([Float].self, 3), Int(try row.get(Int32.self, 4)),
                                                           try row.get(Double.self, "importance"))
            }
            let daemonSelected = try await c.query("SELECT id FROM tov.selected ORDER BY id").map { try $0.get(Int64.self, 0) }
            let signal = try #require(try await c.query("""
                SELECT zval_agreement, zval_halves, zval_transfer, zval_helped_share, zval_agreement_rows,
                       zval_signal_measured_at >= completed_at AS measured_after_switch
                FROM tov.model_versions WHERE status = 'complete'
                """).first)

            // The evaluation's scoring on the same rows and settings.
            let pool = try await c.query("""
                SELECT c.id, c.prompt, c.response, c.source FROM tov.candidates c JOIN tov.ready r ON r.candidate_id = c.id ORDER BY c.id
                """).map { RowText(id: try $0.get(Int64.self, 0), prompt: Array(try $0.get(String.self, 1).utf8),
                                   response: Array(try $0.get(String.self, 2).utf8), source: try $0.get(String.self, 3)) }
            let zval = try await c.query("SELECT id, prompt, response FROM tov.validation ORDER BY id").map {
                RowText(id: try $0.get(Int64.self, 0), prompt: Array(try $0.get(String.self, 1).utf8), response: Array(try $0.get(String.self, 2).utf8))
            }
            let shape = config.surrogate
            let model = ModelConfig(layers: shape.layers, width: shape.width, heads: shape.heads, context: shape.context, vocabSize: shape.vocab)
            var pipeline = PipelineRun(model: model, settings: config.trajectory, uSize: settings.uSize,
                                       method: settings.selection.method, scoreFunction: settings.selection.scoreFunction)
            pipeline.scoring = Model.ScoringOptions(precision: .fp32)
            let evaluation = pipeline.run(pool: pool, zval: zval, theta0: .bootstrap)

            #expect(pool.count == 230 && config.trajectory.seed == 7)
            #expect(evaluation.u == daemonU, "U")
            #expect(evaluation.rows.count == daemonScores.count && evaluation.rows.count == 230 - 150)
            var worst = 0.0
            for (i, row) in evaluation.rows.enumerated() {
                guard let theirs = daemonScores[row.id] else {
                    Issue.record("row \(row.id) scored by the evaluation only")
                    continue
                }
                worst = max(worst, abs(row.score - theirs.score))
                #expect(abs(row.score - theirs.score) < 1e-5, "φ of row \(row.id): evaluation \(row.score), daemon \(theirs.score)")
                #expect(zip(evaluation.baseLosses[i].losses, theirs.base).allSatisfy { abs($0 - $1) < 1e-4 }, "θ_bas losses of row \(row.id)")
                #expect(zip(evaluation.valLosses[i], theirs.val).allSatisfy { abs($0 - $1) < 1e-4 }, "θ_val losses of row \(row.id)")
                #expect(row.length == theirs.tokens)
                #expect(row.importance == theirs.importance, "n-gram weight of row \(row.id)")
            }
            #expect(Set(evaluation.rows.map(\.importance)).count > 2, "the weights differ between rows")
            #expect(evaluation.rows.contains { abs($0.score) > 1e-3 }, "φ is not trivially zero (largest difference \(worst))")
            #expect(evaluation.select(settings.selection).ids == daemonSelected, "the selection")
            // The Z_val signal: the same halves, control and sample (80 rows outside U), the same number.
            let agreement = try #require(evaluation.targets[0].agreement)
            let daemonRows = Int(try signal.get(Int32.self, "zval_agreement_rows"))
            let daemonAgreement = try signal.get(Double.self, "zval_agreement"), daemonHalves = try signal.get(Double.self, "zval_halves")
            #expect(agreement.sampleRows == 80 && daemonRows == 80)
            // Measured once the selection was made: the rescoring did not wait for it.
            #expect(try signal.get(Bool.self, "measured_after_switch"))
            #expect(abs(agreement.agreement - daemonAgreement) < 1e-3, "daemon \(daemonAgreement), evaluation \(agreement)")
            #expect(abs(agreement.halves - daemonHalves) < 1e-3)
            #expect(abs(agreement.transfer - (try signal.get(Double.self, "zval_transfer"))) < 1e-3)
            #expect(abs(agreement.helpedShare - (try signal.get(Double.self, "zval_helped_share"))) < 1e-9)
            // Each Z_val row's held-out gain, stored by tov.validation id.
            let gains = try await c.query("""
                SELECT s.validation_id, s.held_out_gain FROM tov.validation_signal s
                JOIN tov.model_versions m USING (model_version) WHERE m.status = 'complete'
                """).map { (try $0.get(Int64.self, "validation_id"), try $0.get(Double.self, "held_out_gain")) }
            let daemonGains = Dictionary(uniqueKeysWithValues: gains)
            #expect(daemonGains.count == zval.count)
            for (row, gain) in zip(zval, agreement.rowGains) {
                #expect(abs((daemonGains[row.id] ?? .nan) - gain) < 1e-4, "Z_val row \(row.id)")
            }
            let unhelped = try await c.query("SELECT count(*) FROM tov.zval_unhelped WHERE target = 'default'").first!.get(Int64.self, 0)
            #expect(Int(unhelped) == agreement.rowGains.filter { $0 <= 0 }.count)
            #expect(daemonHalves < 0.999, "the halves rank the sample alike but not identically (\(daemonHalves)): a number that can differ")

            // score_dsir, set while the daemon runs: the same selection as the pipeline's rows give it.
            try await c.simpleQuery("UPDATE tov.settings SET value = '\"score_dsir\"' WHERE key = 'policy'")
            var dsirSettings = settings.selection
            dsirSettings.policy = .scoreDSIR
            let expected = evaluation.select(dsirSettings)
            #expect(expected.items.contains { $0.reason == .importance })
            let switched = try await TovTestDatabase.eventually(timeout: .seconds(60)) {
                try await c.query("SELECT count(*) FROM tov.selected WHERE reason = 'importance'").first!.get(Int64.self, 0) > 0
            }
            try #require(switched, "\(daemon.log.suffix(2000))")
            let dsirSelected = try await c.query("SELECT id, reason FROM tov.selected ORDER BY id").map {
                "\(try $0.get(Int64.self, "id"))/\(try $0.get(String.self, "reason"))"
            }
            #expect(dsirSelected == expected.items.map { "\($0.id)/\($0.reason.rawValue)" }, "the score_dsir selection")
            daemon.terminate()
            #expect(await daemon.waitForExit() == 0)
        }
    }
}
