@testable import Daemon
import PQ
import Testing
import TovTesting

/// A kill from outside charges a claim to every row a batch holds; only the tries a row had alone
/// count against it (`tried_alone`, docs/reliability.md scenario 2). A real ScoringWorker on a manual
/// clock: its test-only score delay is where it waits, so the test sees each phase of a claim.
@Suite("A retry is charged only for its try alone")
struct RetryChargeTests {
    @Test func theFreshRowsGoFirstAndTheRetryIsChargedJustBeforeItIsScoredAlone() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let workerConnection = try await Connection.connect(conninfo)
            defer { workerConnection.close() }
            try await TargetWorkerTests.threeTargetsWithCheckpoints(c)
            let ids = try await TovTestDatabase.insertCandidates(5, on: c)
            // ids[0]'s batch was killed: claimed once, never completed, its lease ran out.
            try await c.execute("UPDATE tov.jobs SET attempts = 1, lease_until = now() - interval '1 second' WHERE candidate_id = $1", [ids[0]])
            func triedAlone() async throws -> Int32 {
                try await c.query("SELECT tried_alone FROM tov.jobs WHERE candidate_id = $1", [ids[0]]).first!.get(Int32.self, "tried_alone")
            }

            let manual = ManualClock()
            let worker = TargetWorkerTests.worker(conninfo: conninfo, clock: DaemonClock(manual), scoreDelay: .seconds(1))
            let batch = Task { try await worker.runOneBatch(on: workerConnection) }
            // Asleep in the fresh rows' scoring (and the lease renewal): a kill now is no try of the retry.
            #expect(await manual.waitForSleepers(2))
            #expect(try await TovTestDatabase.count("tov.jobs", on: c, where: "lease_until > now()") == 5, "one claim holds all five")
            #expect(try await triedAlone() == 0)
            #expect(try await TovTestDatabase.count("tov.ready", on: c) == 0)

            manual.advance(by: .seconds(1))
            // The fresh rows committed; the retry is counted as tried alone just before it is scored.
            #expect(await manual.waitForSleepers(2))
            #expect(try await TovTestDatabase.count("tov.ready", on: c) == 4)
            #expect(try await triedAlone() == 1)

            manual.advance(by: .seconds(1))
            #expect(try await batch.value == 5)
            #expect(try await TovTestDatabase.count("tov.ready", on: c) == 5)
            #expect(try await TovTestDatabase.count("tov.jobs", on: c) == 0)
            #expect(try await TovTestDatabase.count("tov.rejects", on: c) == 0)
            #expect(try await TovTestDatabase.count("tov.scores", on: c) == 15, "every row under the three targets' versions")
        }
    }
}
