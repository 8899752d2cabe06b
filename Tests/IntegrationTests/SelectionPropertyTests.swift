@testable import Daemon
import Foundation
import PQ
import Selection
import Testing
import TovTesting

/// Random sequences of inserts, score arrivals, settings changes and restarts: after every step the
/// selection the daemon keeps in SQL equals the Swift reference `select(...)` computed from scratch
/// on the same scores, and `tov.selection_history` replays to the current set.
@Suite("Incremental selection equals the from-scratch reference")
struct SelectionPropertyTests {
    /// Model version 1, complete, without checkpoints: these tests write scores themselves.
    static func createCompleteModelVersion(on c: Connection) async throws {
        try await c.simpleQuery("""
            INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (16, 1, '{}', 'complete');
            INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 1, 'A', 'complete');
            """)
    }

    @Test func randomSequences() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            var c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.createCompleteModelVersion(on: c)
            var g = SplitMix64(seed: 2026)
            var settings = SelectionSettings(budget: .fraction(0.1))
            for step in 0..<60 {
                switch g.next() % 6 {
                case 0, 1:   // rows arrive and get scored (scores sometimes tie, lengths often do)
                    try await Self.addScoredRows(Int(g.next() % 40) + 1, on: c, step: step, function: settings.scoreFunction, random: &g)
                case 2:      // settings change
                    settings.policy = Policy.allCases[Int(g.next() % UInt64(Policy.allCases.count))]
                    settings.budget = g.next() % 2 == 0 ? .rows(Int(g.next() % 60)) : .fraction(Double(g.next() % 100 + 1) / 100)
                    settings.bins = Int(g.next() % 12) + 1
                    settings.seed = Int64(g.next() % 5)
                    settings.scoreFunction = ScoreFunction.allCases[Int(g.next() % UInt64(ScoreFunction.allCases.count))]
                    settings.scoreShare = [0.5, 0.25, 0.75, 0, 1, 0.29][Int(g.next() % 6)]
                case 3:      // restart: a new session, nothing kept in memory
                    c.close()
                    c = try await Connection.connect(conninfo)
                case 4:      // candidates deleted: their scores go by cascade
                    try await Self.deleteCandidates(Int(g.next() % 4) + 1, on: c, step: step)
                default:     // a recompute with nothing new
                    break
                }
                _ = try await c.transaction { tx in try await SelectionWriter.update(in: tx, modelVersion: 1, settings: settings) }
                try await Self.expectReferenceSelection(on: c, settings: settings, step: step)
            }
        }
    }

    /// The incremental path proper: fixed settings, so the bins are never rebuilt from scratch,
    /// only moved at their boundaries, over many small batches (fewer rows than bins at first) and
    /// a few deletes.
    @Test(arguments: [Policy.scoreRandom, .scoreOnly, .uncertainty, .scoreDSIR])
    func manyBatchesUnderFixedSettings(policy: Policy) async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.createCompleteModelVersion(on: c)
            var g = SplitMix64(seed: 7)
            let settings = SelectionSettings(budget: .fraction(0.3), policy: policy, bins: 7, seed: 3)
            for step in 0..<50 {
                if step % 11 == 10 {
                    try await Self.deleteCandidates(3, on: c, step: step)
                } else {
                    try await Self.addScoredRows(Int(g.next() % (step < 5 ? 3 : 25)) + 1, on: c, step: step, random: &g)
                }
                _ = try await c.transaction { tx in try await SelectionWriter.update(in: tx, modelVersion: 1, settings: settings) }
                try await Self.expectReferenceSelection(on: c, settings: settings, step: step)
            }
        }
    }

    /// `count` new candidates scored under version 1, with many tied scores and lengths. φ is
    /// derived as a worker does, under the `score_fn` in force.
    static func addScoredRows(_ count: Int, on c: Connection, step: Int, function: ScoreFunction = .improvement,
                              random g: inout SplitMix64) async throws {
        let ids = try await TovTestDatabase.insertCandidates(count, on: c, prefix: "s\(step)")
        for id in ids {
            let score = Double(Int(g.next() % 7)) / 4 - 0.5
            // score_dsir's weights: sums of float8 log ratios, often far apart, sometimes tied.
            let importance = g.next() % 4 == 0 ? 0 : Double(Int64(g.next() % 4000) - 2000) / 37
            try await c.execute("""
                INSERT INTO tov.scores (candidate_id, model_version, score, base_loss, val_loss, base_losses, val_losses, uncertainty, tokens, importance)
                VALUES ($1, 1, tov.phi(ARRAY[$2::real], '{0}', $5), 1, 1, ARRAY[$2::real], '{0}', $3, $4, $6)
                """, [id, Float(score), Float(g.next() % 100) / -10, Int32(g.next() % 12 + 1), function.rawValue, importance])
        }
    }

    /// Deletes `count` scored candidates, chosen by a hash of the step so runs repeat.
    static func deleteCandidates(_ count: Int, on c: Connection, step: Int) async throws {
        try await c.execute("""
            DELETE FROM tov.candidates WHERE id IN (
                SELECT candidate_id FROM tov.scores WHERE model_version = 1 ORDER BY md5(candidate_id::text || $1::text) LIMIT $2::int)
            """, [String(step), count])
    }

    /// `tov.selected` equals the reference `select()` on the stored scores, and
    /// `tov.selection_history` replays to it.
    static func expectReferenceSelection(on c: Connection, settings: SelectionSettings, step: Int) async throws {
        let rows = try await c.query("SELECT candidate_id, score, uncertainty, tokens, importance FROM tov.scores WHERE model_version = 1").map {
            ScoredRow(id: try $0.get(Int64.self, "candidate_id"), score: try $0.get(Double.self, "score"),
                      uncertainty: Double(try $0.get(Float.self, "uncertainty")), length: Int(try $0.get(Int32.self, "tokens")),
                      importance: try $0.get(Double.self, "importance"))
        }
        let expected = select(rows, settings: settings).items.map { "\($0.id)/\($0.reason.rawValue)/\($0.lengthBin)" }
        let actual = try await c.query("SELECT id, reason, length_bin FROM tov.selected ORDER BY id").map {
            "\(try $0.get(Int64.self, 0))/\(try $0.get(String.self, 1))/\(try $0.get(Int32.self, 2))"
        }
        #expect(actual == expected, "step \(step), \(rows.count) rows, \(settings)")
        // Every score row's stored bin is its reference bin, selected or not.
        let reference = lengthBins(rows, bins: max(settings.bins, 1))
        let stored = try await c.query("SELECT candidate_id, length_bin FROM tov.scores WHERE model_version = 1 AND length_bin IS NOT NULL")
        let wrongBins = try stored.filter { reference[try $0.get(Int64.self, 0)] != Int(try $0.get(Int32.self, 1)) }.count
        #expect(wrongBins == 0 && stored.count == rows.count, "bins at step \(step): \(wrongBins) wrong, \(stored.count) of \(rows.count) binned")
        // History replays to the current set. A deleted candidate's history stays; it left the pool.
        let replayed = try await c.query("""
            SELECT candidate_id FROM (
                SELECT DISTINCT ON (candidate_id) candidate_id, change FROM tov.selection_history
                ORDER BY candidate_id, selection_version DESC) last
            WHERE change = 'in' AND EXISTS (SELECT 1 FROM tov.candidates c WHERE c.id = last.candidate_id)
            ORDER BY candidate_id
            """).map { try $0.get(Int64.self, 0) }
        #expect(replayed == expected.map { Int64($0.split(separator: "/")[0])! }, "history at step \(step)")
    }

    @Test func readersNeverSeeTwoVersionsMixed() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.createCompleteModelVersion(on: c)
            let ids = try await TovTestDatabase.insertCandidates(2000, on: c)
            for id in ids {
                try await c.execute("""
                    INSERT INTO tov.scores (candidate_id, model_version, score, base_loss, val_loss, base_losses, val_losses, uncertainty, tokens)
                    SELECT $1::bigint, 1, tov.phi(l, '{0}', 'improvement'), 1, 1, l, '{0}', 0, 1 + ($1::bigint % 50)::int
                    FROM (SELECT ARRAY[random()::real] AS l) r
                    """, [id])
            }
            let reader = try await Connection.connect(conninfo)
            defer { reader.close() }
            let stop = StopBox()
            let readerTask = Task {
                var mixed = 0, reads = 0
                while !stop.value {
                    let versions = try await reader.query("SELECT count(DISTINCT selection_version), count(*) FROM tov.selected").first!
                    if try versions.get(Int.self, 0) > 1 { mixed += 1 }
                    reads += 1
                }
                return (mixed, reads)
            }
            for seed in 0..<15 {
                _ = try await c.transaction { tx in
                    try await SelectionWriter.update(in: tx, modelVersion: 1, settings: SelectionSettings(budget: .rows(300), seed: Int64(seed)))
                }
            }
            stop.value = true
            let (mixed, reads) = try await readerTask.value
            #expect(mixed == 0)
            #expect(reads > 0)
        }
    }
}

final class StopBox: @unchecked Sendable {
    var value = false
}
