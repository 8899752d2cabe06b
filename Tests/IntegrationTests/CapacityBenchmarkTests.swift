import Daemon
import Foundation
import PQ
import Selection
import Testing
import TovTesting

/// `tovd bench capacity` runs the worker's own claim and completion statements without a model; this
/// keeps it running them (the claim once gained parameters the bench did not pass, and it failed).
@Suite("Capacity benchmark against a real server")
struct CapacityBenchmarkTests {
    @Test func simulatedScorersScoreTheWholeBacklog() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery("""
                INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (0, 2, '{}', 'complete');
                INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 1, 'A', 'complete');
                """)
            try await TovTestDatabase.insertCandidates(100, on: c)
            let result = try await CapacityBenchmark.run(conninfo: conninfo, scorers: 2, batchSize: 16, modelVersion: 1,
                                                         baseVersion: 1, epochs: 2, selection: SelectionSettings())
            #expect(result.rows == 100)
            #expect(try await TovTestDatabase.count("tov.scores", on: c, where: "model_version = 1") == 100)
            #expect(try await TovTestDatabase.count("tov.jobs", on: c) == 0)
        }
    }
}
