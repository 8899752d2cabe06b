import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// A worker's claims while it works and when it stops: leases renewed during a batch slower than
/// the lease, claims given back on a graceful stop. Real `tovd run` processes, slowed by the
/// test-only TOVD_FAULT_SCORE_DELAY_MS hook.
@Suite("Reliability: worker leases", .serialized)
struct WorkerLeaseTests {
    static let validationSQL = "INSERT INTO tov.validation (prompt, response) SELECT 'row prompt', 'row response ' || g FROM generate_series(1, 5) g"

    @Test func aBatchSlowerThanItsLeaseIsNotReclaimedAndLandsOnce() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 16, budgetRows: 10, bins: 2))
            try await c.execute(Self.validationSQL)
            try await TovTestDatabase.insertCandidates(80, on: c)
            // Every batch that scores takes 7 s, 3.5 leases: without renewal each is re-claimed by
            // the other instance (attempts 2, 3, ...) and its results are thrown away.
            let arguments = ["run", "--metrics-port", "0", "--poll-interval", "0.2", "--lease-seconds", "2", "--batch-size", "32"]
            let environment = ["TOVD_FAULT_SCORE_DELAY_MS": "7000"]
            let daemons = [
                try TovdProcess(arguments + ["--instance", "a"], conninfo: conninfo, environment: environment),
                try TovdProcess(arguments + ["--instance", "b"], conninfo: conninfo, environment: environment),
            ]
            defer { for daemon in daemons { daemon.terminate() } }

            var maxAttempts: Int32 = 0
            var figures: PipelineFigures?
            let settled = try await TovTestDatabase.eventually(timeout: .seconds(180)) {
                maxAttempts = max(maxAttempts, try await c.query("SELECT coalesce(max(attempts), 0) FROM tov.jobs").first!.get(Int32.self, 0))
                guard try await StatusReport.load(on: c).nextModelVersion == nil else { return false }
                figures = try await PipelineFigures.measure(on: c)
                return figures!.isConsistent
            }
            let logs = daemons.map { $0.log.suffix(2000) }.joined(separator: "\n---\n")
            #expect(settled, "\(figures.map(String.init(describing:)) ?? "no model version")\n\(logs)")
            #expect(figures?.scored == 80 - 16 && figures?.rejected == 0)
            // No claim was ever taken over: every job was claimed once.
            #expect(maxAttempts == 1)
            for daemon in daemons {
                #expect(await daemon.metric("tovd_leases_lost_total") == 0, "\(daemon.log.suffix(2000))")
            }
            // The delay really made batches slower than the lease.
            let batchSeconds = await daemons.asyncMap { await $0.metric("tovd_batch_seconds_sum") ?? 0 }.reduce(0, +)
            #expect(batchSeconds >= 7)
        }
    }

    @Test func aGracefulStopGivesTheClaimsOfAnInterruptedBatchBack() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 16, budgetRows: 10, bins: 2))
            try await c.execute(Self.validationSQL)
            try await TovTestDatabase.insertCandidates(40, on: c)
            let first = try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2"], conninfo: conninfo)
            #expect(try await PipelineFigures.settle(on: c).isConsistent, "\(first.log.suffix(2000))")
            first.terminate()
            #expect(await first.waitForExit() == 0)

            // A worker stuck in a ten-minute batch under the default 120 s lease.
            try await TovTestDatabase.insertCandidates(30, on: c, prefix: "late")
            let slow = try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2", "--no-leader"], conninfo: conninfo,
                                       environment: ["TOVD_FAULT_SCORE_DELAY_MS": "600000"])
            defer { slow.terminate() }
            #expect(try await TovTestDatabase.eventually {
                try await TovTestDatabase.count("tov.jobs", on: c, where: "attempts = 1 AND lease_until > now()") == 30
            }, "\(slow.log.suffix(2000))")
            slow.terminate()
            #expect(await slow.waitForExit(timeout: .seconds(10)) == 0, "\(slow.log.suffix(2000))")
            // Given back: not charged, free to claim now rather than in two minutes.
            #expect(try await TovTestDatabase.count("tov.jobs", on: c, where: "attempts = 0 AND lease_until IS NULL AND worker IS NULL") == 30)

            let next = try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2"], conninfo: conninfo)
            defer { next.terminate() }
            let figures = try await PipelineFigures.settle(on: c, timeout: .seconds(60))
            #expect(figures.isConsistent, "\(figures)\n\(next.log.suffix(2000))")
            #expect(figures.candidates == 70 && figures.rejected == 0 && figures.scored == 70 - 16)
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
