import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// A checkpoint that cannot be loaded never wedges scoring: the trainer retrains what it names
/// (a corrupt θ_val: a new version on the same base; a corrupt θ0 or θ_bas: a new base model), the
/// old selection stays readable meanwhile, and the pipeline ends consistent.
@Suite("Reliability: corrupt checkpoints", .serialized)
struct CheckpointRecoveryTests {
    static func settled(_ c: Connection) async throws -> Bool {
        let s = try await StatusReport.load(on: c)
        return s.modelVersion != nil && s.nextModelVersion == nil && s.pending == 0 && s.waitingForModel == 0
    }

    static func daemon(_ conninfo: String) throws -> TovdProcess {
        try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2", "--batch-size", "16"], conninfo: conninfo)
    }

    /// Flips bytes in the middle of one stored checkpoint, leaving its recorded SHA-256 as it was.
    static func corrupt(_ kind: String, on c: Connection) async throws {
        let changed = try await c.execute("""
            UPDATE tov.checkpoints SET data = overlay(data PLACING '\\xdeadbeefdeadbeef'::bytea FROM length(data) / 2 FOR 8)
            WHERE id = (SELECT c.id FROM tov.checkpoints c JOIN tov.model_versions m
                        ON m.base_version = c.base_version AND (c.model_version IS NULL OR c.model_version = m.model_version)
                        WHERE m.status = 'complete' AND c.kind = $1 ORDER BY c.epoch DESC LIMIT 1)
            """, [kind])
        #expect(changed == 1)
    }

    @Test(arguments: ["val", "base", "theta0"])
    func corruptCheckpointIsRetrained(kind: String) async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 16, budgetRows: 10, bins: 2))
            try await TovTestDatabase.insertCandidates(40, on: c, prefix: "a row for the checkpoint test", source: "ckpt")
            try await c.execute("INSERT INTO tov.validation (prompt, response) VALUES ('a row', 'for the checkpoint test')")
            let first = try Self.daemon(conninfo)
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(120)) { try await Self.settled(c) }, "\(first.log.suffix(2000))")
            first.terminate()
            #expect(await first.waitForExit() == 0)
            let before = try #require(try await StatusReport.load(on: c).modelVersion)
            let baseBefore = Int(try await c.query("SELECT base_version FROM tov.model_versions WHERE status = 'complete'").first!.get(Int32.self, 0))
            let selectedBefore = try await TovTestDatabase.count("tov.selected", on: c)

            try await Self.corrupt(kind, on: c)
            // θ0 is read only when θ_val is trained: a Z_val change makes the trainer read it.
            if kind == "theta0" {
                try await c.execute("INSERT INTO tov.validation (prompt, response) VALUES ('another row', 'to retrain θ_val')")
            }
            let daemon = try Self.daemon(conninfo)
            defer { daemon.terminate() }
            // New rows arrive meanwhile; the old selection stays readable until the switch.
            try await TovTestDatabase.insertCandidates(5, on: c, prefix: "a row after the corruption", source: "after")
            #expect(try await TovTestDatabase.count("tov.selected", on: c) >= min(selectedBefore, 10))
            let recovered = try await TovTestDatabase.eventually(timeout: .seconds(180)) {
                let settled = try await Self.settled(c)
                let version = try await StatusReport.load(on: c).modelVersion ?? 0
                return settled && version > before
            }
            #expect(recovered, "a corrupt \(kind) checkpoint left scoring stuck; \(daemon.log.suffix(3000))")
            let baseAfter = Int(try await c.query("SELECT base_version FROM tov.model_versions WHERE status = 'complete'").first!.get(Int32.self, 0))
            if kind == "val" {
                #expect(baseAfter == baseBefore, "a corrupt θ_val needs a new version, not a new base model")
            } else {
                #expect(baseAfter > baseBefore, "a corrupt \(kind) needs a new base model")
            }
            let figures = try await PipelineFigures.settle(on: c, timeout: .seconds(60))
            #expect(figures.isConsistent, "\(figures)")
            #expect(try await PipelineFigures.selectionMatchesReference(on: c))
        }
    }
}
