import Daemon
import Foundation
import PQ
import Selection
import Surrogate
import Testing
import TovTesting

/// The whole pipeline on a real server with a tiny surrogate: bootstrap, θ_val refresh, scoring,
/// selection, a Z_val change with its rescoring and atomic switch.
@Suite("Daemon scoring end to end", .serialized)
struct ScoringTests {
    static func status(_ c: Connection) async throws -> StatusReport { try await StatusReport.load(on: c) }

    static func selectionAgreesWithReference(_ c: Connection) async throws -> Bool {
        try await PipelineFigures.selectionMatchesReference(on: c)
    }

    /// 80 rows on two topics, 5 Z_val rows on one, a 16-row U and a 10-row budget in 2 bins.
    static func twoTopicPool(_ c: Connection) async throws {
        try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 16, budgetRows: 10, bins: 2))
        try await TovTestDatabase.insertCandidates(40, on: c, prefix: "the cat sat on the mat", source: "cats")
        try await TovTestDatabase.insertCandidates(40, on: c, prefix: "stock prices fell sharply", source: "finance")
        try await c.execute("INSERT INTO tov.validation (prompt, response) SELECT 'the cat sat', 'on the mat ' || g FROM generate_series(1, 5) g")
    }

    /// Waits until a version is live, nothing is pending and the 10-row budget is selected.
    static func scoredAndSelected(_ c: Connection) async throws -> Bool {
        try await TovTestDatabase.eventually(timeout: .seconds(240)) {
            let s = try await Self.status(c)
            return s.modelVersion != nil && s.pending == 0 && s.rescorePending == 0 && s.selected == 10
        }
    }

    /// `--scoring-precision bf16 --training-precision bf16`: trains and scores in bf16 where the CPU has
    /// AVX-512 BF16 and says so; elsewhere it warns and runs fp32. Either way the pipeline completes and
    /// the selection is exact.
    @Test func bf16PrecisionsRunThePipeline() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.twoTopicPool(c)
            let daemon = try TovdProcess(["run", "--metrics-port", "0", "--poll-interval", "0.2", "--batch-size", "16",
                                          "--scoring-precision", "bf16", "--training-precision", "bf16"], conninfo: conninfo)
            defer { daemon.terminate() }
            let ready = try await Self.scoredAndSelected(c)
            #expect(ready, "\(daemon.log.suffix(3000))")
            #expect(try await TovTestDatabase.count("tov.scores", on: c, where: "score = score AND abs(score) < 'Infinity'") == 80 - 16)
            #expect(try await Self.selectionAgreesWithReference(c))
            let said = ScoringPrecision.isAvailable(.bf16) ? ["scoring in bf16", "training in bf16"]
                : ["bf16 scoring needs AVX-512 BF16", "bf16 training needs AVX-512 BF16"]
            for line in said { #expect(daemon.log.contains(line), "\(daemon.log.suffix(2000))") }
        }
    }

    @Test func bootstrapScoreSelectAndRefresh() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.twoTopicPool(c)
            let daemon = try TovdProcess(["run", "--metrics-port", "0", "--poll-interval", "0.2", "--batch-size", "16"], conninfo: conninfo)
            defer { daemon.terminate() }

            let ready = try await Self.scoredAndSelected(c)
            #expect(ready, "\(daemon.log.suffix(3000))")
            // U rows are never scored; every other ready row is scored exactly once per version.
            #expect(try await TovTestDatabase.count("tov.scores s JOIN tov.base_subset b USING (candidate_id)", on: c) == 0)
            #expect(try await TovTestDatabase.count("tov.scores", on: c) == 80 - 16)
            // The last batch's scores may reach the selection a tick after the status shows them scored.
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(10)) { try await Self.selectionAgreesWithReference(c) })
            let firstVersion = try await Self.status(c).modelVersion!

            // Three Z_val changes inside one debounce window: exactly one refresh, a new complete
            // version, the selection switched to it.
            try await c.execute("UPDATE tov.settings SET value = '2' WHERE key = 'zval_debounce_seconds'")
            for i in 0..<3 {
                try await c.execute("INSERT INTO tov.validation (prompt, response) VALUES ('stock prices', $1)", ["fell again \(i)"])
            }
            let switched = try await TovTestDatabase.eventually(timeout: .seconds(240)) {
                let s = try await Self.status(c)
                return (s.modelVersion ?? 0) > firstVersion && s.rescorePending == 0 && s.nextModelVersion == nil
            }
            #expect(switched, "\(daemon.log.suffix(3000))")
            #expect(try await TovTestDatabase.count("tov.refreshes", on: c) == 2)
            #expect(try await TovTestDatabase.count("tov.scores", on: c, where: "model_version = \(firstVersion + 1)") == 80 - 16)
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(10)) { try await Self.selectionAgreesWithReference(c) })

            // Settings take effect without a restart.
            try await c.execute("UPDATE tov.settings SET value = '\"score_only\"' WHERE key = 'policy'")
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(20)) {
                try await TovTestDatabase.count("tov.selected", on: c, where: "reason <> 'score'") == 0
            })
            #expect(try await Self.selectionAgreesWithReference(c))

            // A score_fn change re-derives φ of every stored score (once; later ticks skip it).
            try await c.execute("UPDATE tov.settings SET value = '\"abs\"' WHERE key = 'score_fn'")
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(20)) {
                let stale = try await TovTestDatabase.count("tov.scores", on: c, where: "score IS DISTINCT FROM tov.phi(base_losses, val_losses, 'abs')")
                let applied = try await TovTestDatabase.count("tov.selection_state", on: c, where: "settings ->> 'score_fn' = 'abs'")
                return stale == 0 && applied == 1
            })
            #expect(try await Self.selectionAgreesWithReference(c))

            // explain works on a selected row
            let id = try await c.query("SELECT id FROM tov.selected LIMIT 1").first!.get(Int64.self, 0)
            let explanation = try await Explanation.load(candidateID: id, on: c)
            #expect(explanation.lines.contains { $0.hasPrefix("in:") })
            daemon.terminate()
            #expect(await daemon.waitForExit() == 0)
        }
    }

    /// U is sampled from the whole backlog, not from the first rows validated: with 400 rows waiting
    /// and validation in batches of 20, the pool reaches |U| = 40 after two batches, but the leader
    /// waits for validation to catch up, so U spreads over all ids (the later half holds about 20).
    @Test func uIsSampledFromTheWholeBacklog() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 40, budgetRows: 10, bins: 2))
            try await TovTestDatabase.insertCandidates(400, on: c, prefix: "a row of the backlog", source: "backlog")
            let daemon = try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2", "--batch-size", "20"], conninfo: conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(120)) {
                try await TovTestDatabase.count("tov.base_subset", on: c) == 40
            }, "\(daemon.log.suffix(3000))")
            let laterHalf = try await TovTestDatabase.count("""
                tov.base_subset b JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM tov.candidates) c
                ON c.id = b.candidate_id
                """, on: c, where: "c.n > 200")
            // Binomial(40, ½): fewer than 8 in the later half has probability below 1e-5.
            #expect(laterHalf >= 8, "U holds only \(laterHalf) of its 40 rows from the later half of the backlog")
            daemon.terminate()
            #expect(await daemon.waitForExit() == 0)
        }
    }
}
