import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// `tovd status` and `tovd explain` on states set up by hand in a real database: no leader possible
/// (defect 12 of issue 24) and a rebase being rescored (defect 11).
@Suite("tovd status and explain")
struct StatusTests {
    /// A leader whose lease expired a minute ago, in the middle of training θ_val.
    static let deadLeaderSQL = """
        UPDATE tov.leader SET instance = 'old-leader', holder = 'old-leader:t', epoch = 7,
            lease_until = now() - interval '1 minute', heartbeat_at = now() - interval '1 minute';
        UPDATE tov.leader_activity SET activity = 'θ_val', reason = 'Z_val changed', done = 3, total = 10,
            unit = 'epochs', started_at = now() - interval '2 minutes';
        """

    /// Defect 12: with only `--no-leader` instances running, status said "a standby takes over within
    /// seconds" and showed the dead leader's activity as what the daemon is doing.
    @Test func onlyNoLeaderInstancesMeanNoInstanceCanLead() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery(Self.deadLeaderSQL + """
                INSERT INTO tov.instances (holder, instance, workers, leader_capable)
                VALUES ('w1:a', 'w1', 2, false), ('w2:b', 'w2', 2, false);
                """)
            let report = try await StatusReport.load(on: c)
            #expect(report.daemonState == "no instance can lead")
            #expect(report.leaderCapableInstances == 0)
            #expect(report.activity == nil, "the dead leader's activity is shown as current: \(String(describing: report.activity))")
            let text = report.humanReadable
            #expect(text.contains("none can lead") && !text.contains("takes over") && !text.contains("θ_val"), "\(text)")

            // The CLI says the same, in JSON too.
            let run = try TovdProcess(["status", "--json"], conninfo: conninfo)
            #expect(await run.waitForExit() == 0, "\(run.log)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(run.log.utf8)) as? [String: Any])
            #expect(json["daemon_state"] as? String == "no instance can lead")
            #expect(json["activity"] is NSNull && json["leader_capable_instances"] as? Int == 0)

            // One instance that can lead: a take-over is possible, and status says so; still no
            // activity until it has taken over.
            try await c.simpleQuery("INSERT INTO tov.instances (holder, instance, workers, leader_capable) VALUES ('s1:c', 's1', 0, true)")
            let standby = try await StatusReport.load(on: c)
            #expect(standby.daemonState == "no leader" && standby.leaderCapableInstances == 1)
            #expect(standby.activity == nil)
            #expect(standby.humanReadable.contains("1 of them can lead"), "\(standby.humanReadable)")

            // A role that may not read tov.instances (tov_reader) is not told a take-over will happen.
            let login = "reader_\(UUID().uuidString.prefix(8).lowercased())"
            try await c.simpleQuery("CREATE ROLE \(login) LOGIN IN ROLE tov_reader")
            defer { Task { try? await c.simpleQuery("DROP ROLE IF EXISTS \(login)") } }
            let reader = try await Connection.connect(conninfo + " user=\(login)")
            defer { reader.close() }
            let asReader = try await StatusReport.load(on: reader)
            #expect(asReader.daemonState == "no leader" && asReader.leaderCapableInstances == nil && asReader.activity == nil)
            #expect(asReader.humanReadable.contains("if one runs"), "\(asReader.humanReadable)")
        }
    }

    /// A rescoring is counted from the queue and workers carry it on without a leader, so it stays.
    @Test func aRescoringIsShownWithoutALeader() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let ids = try await TovTestDatabase.insertCandidates(4, on: c)
            try await c.simpleQuery(Self.deadLeaderSQL + """
                INSERT INTO tov.instances (holder, instance, workers, leader_capable) VALUES ('w1:a', 'w1', 2, false);
                INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (1, 1, '{}', 'complete');
                INSERT INTO tov.model_versions (target_id, base_version, zval_version, method, status, rescore_total, trained_at, reason)
                    SELECT 1, max(base_version), 1, 'A', 'scoring', 4, now() - interval '10 seconds', 'Z_val changed' FROM tov.base_models;
                """)
            try await c.execute("""
                INSERT INTO tov.jobs (candidate_id, model_version)
                SELECT unnest($1::bigint[]), (SELECT max(model_version) FROM tov.model_versions)
                ON CONFLICT DO NOTHING
                """, [Array(ids.prefix(3))])
            let report = try await StatusReport.load(on: c)
            #expect(report.daemonState == "no instance can lead")
            #expect(report.activity?.name == "rescoring", "\(String(describing: report.activity))")
        }
    }

    /// Defect 11: while a rebase's version is rescored, the new base model is complete (the old one
    /// superseded) but the selection still comes from the old base's version. A selected row in the new
    /// base's U was explained as "U rows are never scored or selected".
    @Test func explainUsesTheCurrentVersionsBaseSubset() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let ids = try await TovTestDatabase.insertCandidates(3, on: c)
            let (selected, inOldU, scored) = (ids[0], ids[1], ids[2])
            let bases = try await c.query("""
                INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (1, 1, '{}', 'superseded'), (1, 1, '{}', 'complete')
                RETURNING base_version
                """).map { Int(try $0.get(Int32.self, "base_version")) }
            let versions = try await c.query("""
                INSERT INTO tov.model_versions (target_id, base_version, zval_version, method, status) VALUES (1, $1, 1, 'A', 'complete'), (1, $2, 1, 'A', 'scoring')
                RETURNING model_version
                """, [bases[0], bases[1]]).map { Int(try $0.get(Int32.self, "model_version")) }
            try await c.execute("INSERT INTO tov.base_subset (base_version, candidate_id) VALUES ($1, $2), ($3, $4)",
                                [bases[0], inOldU, bases[1], selected])
            try await c.execute("""
                INSERT INTO tov.scores (candidate_id, model_version, score, base_loss, val_loss, base_losses, val_losses, uncertainty, tokens)
                SELECT unnest($1::bigint[]), $2, 0.5, 2, 1.5, '{2}', '{1.5}', 0.1, 5
                """, [[selected, scored], versions[0]])
            try await c.execute("INSERT INTO tov.selection_items (target_id, candidate_id, score, reason, length_bin) VALUES (1, $1, 0.5, 'score', 0)", [selected])

            let explained = try await Explanation.load(candidateID: selected, on: c).lines
            #expect(!explained.contains { $0.contains("never scored or selected") }, "\(explained)")
            #expect(explained.contains { $0.hasPrefix("in: selected by score") }, "\(explained)")
            #expect(explained.contains { $0.contains("base subset U of base model \(bases[1])") && $0.contains("once its version switches in") },
                    "\(explained)")

            // U of the version in force still keeps its rows out.
            let oldU = try await Explanation.load(candidateID: inOldU, on: c).lines
            #expect(oldU.first?.contains("base subset U of base model \(bases[0])") == true, "\(oldU)")
            #expect(oldU.last == "out: U rows are never scored or selected")

            let plain = try await Explanation.load(candidateID: scored, on: c).lines
            #expect(plain.first?.hasPrefix("model version \(versions[0]), score function") == true, "\(plain)")
            #expect(plain.last?.hasPrefix("out: not in the current selection") == true, "\(plain)")
            #expect(try await Explanation.load(candidateID: 999_999, on: c).lines == ["no candidate with id 999999"])
        }
    }
}
