@testable import Daemon
import Foundation
import PQ
import Surrogate
import Testing
import TovTesting

/// The fault suite with several targets (issue 26, item 5): real `tovd` processes, the whole pipeline
/// on a tiny surrogate, and target changes at the moments that hurt most. Every scenario ends with
/// ``PipelineFigures/settle(on:timeout:)`` over every target: nothing lost or doubled, every ready row
/// outside U scored once under each target's complete version, each selection equal to the reference.
@Suite("Reliability: several targets under faults", .serialized)
struct TargetFaultTests {
    static func zval(_ target: String, rows: Int = 5, on c: Connection) async throws {
        try await c.execute("""
            INSERT INTO tov.validation (target, prompt, response) SELECT $1, $1 || ' prompt ' || g, $1 || ' response ' || g FROM generate_series(1, $2::int) g
            """, [target, rows])
    }

    static func versionInFlight(_ target: String, on c: Connection) async throws -> Bool {
        try await TovTestDatabase.count("tov.model_versions m JOIN tov.targets t USING (target_id)", on: c,
                                        where: "t.name = '\(target)' AND m.status IN ('training', 'scoring')") > 0
    }

    /// Two daemons and two writers on three targets (the fault suite's two and 'drop'); meanwhile a
    /// Z_val change on one target while another rescores, a target added while a rebase trains, and a
    /// target dropped while it refreshes.
    @Test func aZvalChangeAnAddAndADropDuringRescoringAndARebase() async throws {
        try await FaultScenarioTests.withPipeline { conninfo, c in
            try await c.execute(#"INSERT INTO tov.targets (name, settings) VALUES ('drop', '{"budget": {"rows": 30}, "score_fn": "abs"}')"#)
            try await Self.zval("drop", on: c)
            // Every training phase lasts ≥ 0.4 s: the tiny surrogate trains a base model faster than
            // the 50 ms poll below can see it training (CI once missed the rebase's moment so).
            let daemons = try (0..<2).map {
                try FaultScenarioTests.daemon(conninfo, ["--instance", "t\($0)"], environment: ["TOVD_FAULT_PHASE_DELAY_MS": "400"])
            }
            defer { daemons.forEach { $0.terminate() } }
            let writers = BackgroundWriters(conninfo: conninfo, writers: 2, rowsPerInsert: 50, interval: .milliseconds(20), limit: 6_000)
            let start = ContinuousClock.now
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(120)) {
                try await TovTestDatabase.count("tov.target_status", on: c, where: "model_version IS NOT NULL") == 3
            }, "\(daemons[0].log.suffix(2000))")

            // A Z_val change of 'drop' while 'default' rescores.
            try await c.execute("INSERT INTO tov.training_requests (kind, target_id) VALUES ('refresh', tov.default_target_id())")
            let rescoring = try await TovTestDatabase.eventually(timeout: .seconds(60)) { try await Self.versionInFlight("default", on: c) }
            try await Self.zval("drop", rows: 1, on: c)

            // A target added while a rebase trains.
            try await c.execute("INSERT INTO tov.training_requests (kind) VALUES ('rebase')")
            // It waits for every target's rescoring to end first.
            let rebasing = try await TovTestDatabase.eventually(timeout: .seconds(120)) {
                try await TovTestDatabase.count("tov.base_models", on: c, where: "status = 'training'") > 0
            }
            try await c.execute("INSERT INTO tov.targets (name) VALUES ('added')")
            try await Self.zval("added", on: c)

            // A target dropped while it refreshes (its version training or rescoring).
            try await c.execute("INSERT INTO tov.targets (name) VALUES ('doomed')")
            try await Self.zval("doomed", on: c)
            let doomedInFlight = try await TovTestDatabase.eventually(timeout: .seconds(120)) { try await Self.versionInFlight("doomed", on: c) }
            try await c.execute("DELETE FROM tov.targets WHERE name = 'doomed'")

            await writers.finish()
            let figures = try await PipelineFigures.settle(on: c, timeout: .seconds(300))
            #expect(figures.isConsistent && figures.targets == 4, "\(figures)\n\(daemons[0].log.suffix(3000))")
            #expect(figures.candidates == writers.rowsInserted)
            #expect(try await TovTestDatabase.count("tov.model_versions", on: c, where: "target_id NOT IN (SELECT target_id FROM tov.targets)") == 0)
            FaultScenarioTests.report("2 daemons, 2 writers, 3 targets changed during rescoring and a rebase", figures,
                                      "moments hit: rescoring \(rescoring), rebase training \(rebasing), dropped target in flight \(doomedInFlight); "
                                        + "settled in \(FaultScenarioTests.seconds(since: start))")
            #expect(rescoring && rebasing && doomedInFlight, "a fault was not injected at its moment")
            for d in daemons { d.terminate() }
            for d in daemons { #expect(await d.waitForExit() == 0) }
        }
    }

    /// Sixteen targets on one pool: every one ends with its own version and selection, the queue
    /// never holds more than one job per row and version in flight, and the daemon's memory is
    /// reported beside the one-target figure of the same run.
    @Test func sixteenTargetsSettleWithTheQueueBounded() async throws {
        try await FaultScenarioTests.withPipeline { conninfo, c in
            // The fault suite's two targets and fourteen more.
            for k in 3...16 {
                try await c.execute("INSERT INTO tov.targets (name, settings) VALUES ($1, $2::jsonb)",
                                    ["t\(k)", #"{"budget": {"rows": \#(10 + k)}}"#])
                try await Self.zval("t\(k)", on: c)
            }
            try await TovTestDatabase.insertCandidates(600, on: c)
            let daemon = try FaultScenarioTests.daemon(conninfo, ["--instance", "k16"])
            defer { daemon.terminate() }
            let start = ContinuousClock.now
            var mostJobs = 0
            var figures = PipelineFigures()
            let settled = try await TovTestDatabase.eventually(timeout: .seconds(300)) {
                mostJobs = max(mostJobs, try await TovTestDatabase.count("tov.jobs", on: c))
                guard try await TovTestDatabase.count("tov.model_versions", on: c, where: "status IN ('training', 'scoring')") == 0 else { return false }
                figures = try await PipelineFigures.measure(on: c)
                return figures.isConsistent
            }
            #expect(settled && figures.targets == 16, "\(figures)\n\(daemon.log.suffix(3000))")
            // At most one job per row for its validation plus one per row and rescoring version.
            #expect(mostJobs <= 600 * (1 + 16), "\(mostJobs) jobs queued at once")
            let rss = ProcessStats.peakResidentKilobytes(pid: daemon.pid).map { Double($0) / 1024 }
            FaultScenarioTests.report("16 targets, 600 rows", figures,
                                      "most jobs queued at once \(mostJobs), peak RSS \(rss.map { String(format: "%.0f MB", $0) } ?? "?"), "
                                        + "settled in \(FaultScenarioTests.seconds(since: start))")
            daemon.terminate()
            #expect(await daemon.waitForExit() == 0)
        }
    }
}
