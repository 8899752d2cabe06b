import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// The selection stays current while Z_val, settings and the pool change (issue: continuous under
/// change), with real `tovd run` processes and a tiny surrogate.
@Suite("Continuous under change", .serialized)
struct ContinuousTests {
    static func status(_ c: Connection) async throws -> StatusReport { try await StatusReport.load(on: c) }

    /// A pool with two kinds of text and a Z_val of the first kind; budget = every scored row, so a
    /// newly scored row is visible in tov.selected at once.
    static func seed(_ c: Connection, rows: Int = 60, uSize: Int = 16) async throws {
        try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: uSize, budgetRows: 10, bins: 2))
        try await c.execute("UPDATE tov.settings SET value = '{\"rows\": 100000}' WHERE key = 'budget'")
        try await TovTestDatabase.insertCandidates(rows / 2, on: c, prefix: "the cat sat on the mat", source: "cats")
        try await TovTestDatabase.insertCandidates(rows - rows / 2, on: c, prefix: "stock prices fell sharply", source: "finance")
        try await c.execute("INSERT INTO tov.validation (prompt, response) SELECT 'the cat sat', 'on the mat ' || g FROM generate_series(1, 4) g")
    }

    static func daemon(_ conninfo: String, _ extra: [String] = [], environment: [String: String] = [:]) throws -> TovdProcess {
        try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2", "--batch-size", "16"] + extra,
                        conninfo: conninfo, environment: environment)
    }

    static func settled(_ c: Connection) async throws -> Bool {
        let s = try await status(c)
        return s.modelVersion != nil && s.nextModelVersion == nil && s.pending == 0 && s.waitingForModel == 0
    }

    static func int(_ sql: String, on c: Connection) async throws -> Int {
        Int(try await c.query(sql).first!.get(Int64.self, 0))
    }

    /// Z_val changes every second for longer than three full refreshes of the test pool. Versions
    /// keep completing (none is thrown away), and once the changes stop, tov.selected reflects the
    /// latest Z_val within two refresh durations plus the debounce.
    @Test func refreshesNeverStarve() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.seed(c, rows: 120)
            try await c.execute("UPDATE tov.settings SET value = '1' WHERE key = 'zval_debounce_seconds'")
            let daemon = try Self.daemon(conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(180)) { try await Self.settled(c) }, "\(daemon.log.suffix(3000))")
            // One refresh (train θ_val + rescore) of this pool, measured: the unit of the bound.
            try await c.execute("INSERT INTO tov.validation (prompt, response) VALUES ('stock prices', 'fell once more')")
            let first = ContinuousClock.now
            let before = try #require(try await Self.status(c).modelVersion)
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(180)) {
                let settled = try await Self.settled(c)
                let version = try await Self.status(c).modelVersion ?? 0
                return settled && version > before
            })
            let refresh = ContinuousClock.now - first
            let stormLength = max(refresh * 3 + .seconds(2), .seconds(12))

            let completedBefore = try await Self.int("SELECT count(*) FROM tov.model_versions WHERE status IN ('complete', 'superseded')", on: c)
            let stormStart = ContinuousClock.now
            var changes = 0
            while ContinuousClock.now - stormStart < stormLength {
                try await c.execute("INSERT INTO tov.validation (prompt, response) VALUES ('the cat', $1)", ["change \(changes)"])
                changes += 1
                // The storm's pacing (a Z_val change a second), not a wait for an event.
                try await Task.sleep(for: .seconds(1))
            }
            let lastChange = ContinuousClock.now
            let completedDuring = try await Self.int(
                "SELECT count(*) FROM tov.model_versions WHERE status IN ('complete', 'superseded')", on: c) - completedBefore
            #expect(completedDuring >= 2, "only \(completedDuring) versions completed during \(changes) Z_val changes in \(stormLength)")
            #expect(try await Self.int("SELECT count(*) FROM tov.model_versions WHERE status = 'failed'", on: c) == 0)

            let latest = try await Self.int("SELECT version FROM tov.zval_version", on: c)
            let bound = refresh * 2 + .seconds(1) + .seconds(10)   // two refreshes + debounce + polling slack
            let caughtUp = try await TovTestDatabase.eventually(timeout: bound) {
                let z = try await c.query("""
                    SELECT m.zval_version FROM tov.selection_state s JOIN tov.model_versions m USING (model_version)
                    WHERE m.status = 'complete'
                    """).first.map { Int(try $0.get(Int64.self, 0)) }
                let idle = try await Self.status(c).nextModelVersion == nil
                return z == latest && idle
            }
            let staleness = ContinuousClock.now - lastChange
            print("refresh of the test pool: \(refresh); Z_val changes: \(changes) over \(stormLength); versions completed meanwhile: \(completedDuring); latest Z_val reflected \(staleness) after the last change (bound \(bound))")
            #expect(caughtUp, "selection not on Z_val version \(latest) within \(bound); \(daemon.log.suffix(3000))")
            #expect(try await PipelineFigures.selectionMatchesReference(on: c))
        }
    }

    /// A change to a setting that shapes the base trajectory trains a new base model (new U, θ0,
    /// θ_bas, θ_val), rescores the pool under it and switches once; readers never see a torn
    /// selection meanwhile. `surrogate`, then `u_size`.
    @Test func baseShapingSettingsRebase() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.seed(c, rows: 80)
            let daemon = try Self.daemon(conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(180)) { try await Self.settled(c) }, "\(daemon.log.suffix(3000))")

            // A reader that checks every snapshot of tov.selected is one selection version.
            let reader = try await Connection.connect(conninfo)
            defer { reader.close() }
            let torn = TornReads()
            let watching = Task {
                while !Task.isCancelled {
                    let r = try await reader.query("SELECT count(DISTINCT selection_version), count(*) FROM tov.selected").first!
                    if try r.get(Int64.self, 0) > 1 { torn.count += 1 }
                    torn.reads += 1
                    // The reader's pacing, not a wait for an event.
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            defer { watching.cancel() }

            for (key, value, expectedU) in [("surrogate", #"{"layers": 1, "width": 24, "heads": 2, "context": 32, "vocab": 300}"#, 16),
                                            ("u_size", "20", 20)] {
                let base = try await Self.int("SELECT max(base_version)::bigint FROM tov.base_models WHERE status = 'complete'", on: c)
                let changed = ContinuousClock.now
                try await c.execute("UPDATE tov.settings SET value = $1::jsonb WHERE key = $2", [value, key])
                let rebased = try await TovTestDatabase.eventually(timeout: .seconds(180)) {
                    let live = try await c.query("""
                        SELECT m.base_version FROM tov.model_versions m JOIN tov.selection_state s USING (model_version)
                        WHERE m.status = 'complete'
                        """).first.map { Int(try $0.get(Int32.self, 0)) }
                    let settled = try await Self.settled(c)
                    return (live ?? 0) > base && settled
                }
                print("\(key) change → rebased selection in \(ContinuousClock.now - changed)")
                #expect(rebased, "\(key) change did not rebase; \(daemon.log.suffix(3000))")
                let newBase = try await Self.int("SELECT max(base_version)::bigint FROM tov.base_models WHERE status = 'complete'", on: c)
                #expect(newBase == base + 1, "exactly one new base model for the \(key) change")
                #expect(try await Self.int("SELECT count(*) FROM tov.base_subset WHERE base_version = \(newBase)", on: c) == expectedU)
                #expect(try await Self.int("SELECT count(*) FROM tov.base_models WHERE reason LIKE 'rebase: \(key) changed%'", on: c) == 1)
                // Every ready row outside the new U is scored under the new version, once.
                let version = try #require(try await Self.status(c).modelVersion)
                #expect(try await Self.int("SELECT count(*) FROM tov.scores WHERE model_version = \(version)", on: c) == 80 - expectedU)
                #expect(try await PipelineFigures.selectionMatchesReference(on: c))
            }
            let stored = try await c.query("SELECT config ->> 'surrogate' FROM tov.base_models WHERE status = 'complete'").first!.get(String.self, 0)
            #expect(stored.contains("24"))
            watching.cancel()
            #expect(torn.count == 0, "\(torn.count) of \(torn.reads) reads saw two selection versions")
            #expect(torn.reads > 10)
        }
    }

    /// `val_lr_ratio` refreshes (a version is keyed on it), `tovd refresh` makes a new version with
    /// nothing changed, `tovd rebase` a new base model; bad Z_val rows are left out and reported.
    @Test func refreshAndRebaseOnRequestAndZvalRowsValidated() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.seed(c, rows: 40)
            // An empty response and a binary row in Z_val: reported, left out, training goes on.
            try await c.execute("INSERT INTO tov.validation (prompt, response) VALUES ('an empty answer', ''), ('binary', repeat(chr(1), 64))")
            let daemon = try Self.daemon(conninfo, ["--metrics-port", "0"])
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(180)) { try await Self.settled(c) }, "\(daemon.log.suffix(3000))")
            #expect(try await Self.int("SELECT count(*) FROM tov.validation_rejects", on: c) == 2)
            #expect(try await Self.status(c).zvalRejected == 2)
            #expect(daemon.log.contains("Z_val rows left out of training"))

            let versions = { try await Self.int("SELECT count(*) FROM tov.model_versions WHERE status IN ('complete', 'superseded')", on: c) }
            let bases = { try await Self.int("SELECT count(*) FROM tov.base_models WHERE status IN ('complete', 'superseded')", on: c) }
            let settledWith = { (v: Int, b: Int) in
                try await TovTestDatabase.eventually(timeout: .seconds(180)) {
                    let settled = try await Self.settled(c)
                    let nv = try await versions()
                    let nb = try await bases()
                    return settled && nv == v && nb == b
                }
            }
            try await c.execute("UPDATE tov.settings SET value = '0.5' WHERE key = 'val_lr_ratio'")
            #expect(try await settledWith(2, 1), "val_lr_ratio did not refresh; \(daemon.log.suffix(2000))")
            #expect(try await Self.int("SELECT count(*) FROM tov.model_versions WHERE reason = 'val_lr_ratio changed' AND val_lr_ratio = 0.5", on: c) == 1)

            let refresh = try TovdProcess(["refresh"], conninfo: conninfo)
            #expect(await refresh.waitForExit() == 0, "\(refresh.log)")
            #expect(refresh.log.contains("refresh requested"))
            #expect(try await settledWith(3, 1), "tovd refresh made no new version; \(daemon.log.suffix(2000))")
            #expect(try await Self.int("SELECT count(*) FROM tov.model_versions WHERE reason = 'tovd refresh'", on: c) == 1)

            let rebase = try TovdProcess(["rebase"], conninfo: conninfo)
            #expect(await rebase.waitForExit() == 0, "\(rebase.log)")
            #expect(try await settledWith(4, 2), "tovd rebase made no new base model; \(daemon.log.suffix(2000))")
            #expect(try await Self.int("SELECT count(*) FROM tov.base_models WHERE reason = 'rebase: tovd rebase'", on: c) == 1)
            #expect(try await Self.int("SELECT count(*) FROM tov.training_requests WHERE started_at IS NULL", on: c) == 0)

            // The metrics of this instance are the database's figures.
            let s = try await Self.status(c)
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(10)) {
                await daemon.metric("tovd_model_version") == Double(s.modelVersion ?? -1)
            })
            #expect(await daemon.metric("tovd_selection_size") == Double(s.selected))
        }
    }

    /// Every instance, leader or not, reports the model and selection figures the database holds.
    @Test func everyInstanceReportsTheDatabaseFigures() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.seed(c, rows: 40)
            let leader = try Self.daemon(conninfo, ["--metrics-port", "0", "--instance", "lead"])
            defer { leader.terminate() }
            let scorer = try Self.daemon(conninfo, ["--metrics-port", "0", "--instance", "score", "--no-leader"])
            defer { scorer.terminate() }
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(180)) { try await Self.settled(c) }, "\(leader.log.suffix(3000))")
            let s = try await Self.status(c)
            for d in [leader, scorer] {
                #expect(try await TovTestDatabase.eventually(timeout: .seconds(10)) {
                    let version = await d.metric("tovd_model_version")
                    let size = await d.metric("tovd_selection_size")
                    let selection = await d.metric("tovd_selection_version")
                    return version == Double(s.modelVersion ?? -1) && size == Double(s.selected) && selection == Double(s.selectionVersion)
                }, "\(d.log.suffix(1000))")
            }
            #expect(await leader.metric("tovd_leader") == 1)
            #expect(await scorer.metric("tovd_leader") == 0)
        }
    }

    /// Pool growth past `rebase_growth` since U was drawn rebases exactly once (the new base model
    /// records the pool it drew from, so the next rebase needs the same growth again).
    @Test func poolGrowthRebasesOnce() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.seed(c, rows: 40)
            try await c.execute("""
                INSERT INTO tov.settings (key, value) VALUES ('rebase_growth', '2')
                ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
                """)
            let daemon = try Self.daemon(conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(180)) { try await Self.settled(c) }, "\(daemon.log.suffix(3000))")
            #expect(try await Self.int("SELECT count(*) FROM tov.base_models", on: c) == 1)
            #expect(try await Self.int("SELECT pool_rows_at_draw FROM tov.base_models", on: c) == 40)

            try await TovTestDatabase.insertCandidates(30, on: c, prefix: "more of the same pool", source: "cats")
            // Once the rows are validated and the trainer has decided on them, nothing was rebased.
            #expect(try await TovTestDatabase.eventually { try await TovTestDatabase.count("tov.ready", on: c) == 70 })
            #expect(try await TovTestDatabase.trainerDecidedTwice(on: c))
            #expect(try await Self.int("SELECT count(*) FROM tov.base_models", on: c) == 1, "70 rows is less than 2 × 40")
            try await TovTestDatabase.insertCandidates(20, on: c, prefix: "a pool that keeps growing", source: "finance")
            let rebased = try await TovTestDatabase.eventually(timeout: .seconds(180)) {
                let settled = try await Self.settled(c)
                let bases = try await Self.int("SELECT count(*) FROM tov.base_models WHERE status IN ('complete', 'superseded')", on: c)
                return settled && bases == 2
            }
            #expect(rebased, "\(daemon.log.suffix(3000))")
            #expect(try await Self.int("SELECT count(*) FROM tov.base_models WHERE reason LIKE 'rebase: pool grew from 40 to 90 rows%'", on: c) == 1)
            #expect(try await TovTestDatabase.trainerDecidedTwice(on: c))
            #expect(try await Self.int("SELECT count(*) FROM tov.base_models", on: c) == 2, "growth rebases once")
            let version = try #require(try await Self.status(c).modelVersion)
            #expect(try await Self.int("SELECT count(*) FROM tov.scores WHERE model_version = \(version)", on: c) == 90 - 16)
        }
    }

    /// While θ_val trains for a long time (an injected 25 s stall), new rows are still scored under
    /// the complete version and appear in tov.selected, and the leader's heartbeat advances.
    @Test func selectionStaysCurrentWhileThetaValTrains() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.seed(c, rows: 40)
            let first = try Self.daemon(conninfo)
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(180)) { try await Self.settled(c) }, "\(first.log.suffix(3000))")
            first.terminate()
            #expect(await first.waitForExit() == 0)

            let daemon = try Self.daemon(conninfo, ["--log-level", "debug"], environment: ["TOVD_FAULT_TRAIN_DELAY_MS": "25000"])
            defer { daemon.terminate() }
            try await c.execute("INSERT INTO tov.validation (prompt, response) VALUES ('stock prices', 'fell again')")
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(30)) {
                try await Self.status(c).activity?.name == "θ_val"
            }, "\(daemon.log.suffix(3000))")
            let heartbeat0 = try await c.query("SELECT heartbeat_at::text FROM tov.leader").first!.get(String.self, 0)
            try await TovTestDatabase.insertCandidates(5, on: c, prefix: "a fresh row while θ_val trains", source: "fresh")
            let visible = try await Self.selected(5, from: "fresh", on: c, within: .seconds(15))
            let bySource = try await c.query("SELECT coalesce(source, '-') || '=' || count(*) FROM tov.selected GROUP BY source").map { try $0.get(String.self, 0) }
            #expect(visible, "new rows did not reach tov.selected while θ_val trained: \(bySource), \(daemon.log.suffix(3000))")
            let s = try await Self.status(c)
            #expect(s.activity?.name == "θ_val", "still training: \(String(describing: s.activity))")
            #expect(s.nextModelStatus == "training")
            // The lease is renewed while θ_val trains: the heartbeat moves, and training goes on.
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(10)) {
                try await c.query("SELECT heartbeat_at::text FROM tov.leader").first!.get(String.self, 0) != heartbeat0
            }, "the leader heartbeat did not advance during training")
            #expect(try await Self.status(c).nextModelStatus == "training", "θ_val should still be training")
            #expect((s.leaderHeartbeatAgeSeconds ?? 99) < 5)
        }
    }

    /// Whether `count` rows of `source` are in tov.selected within `timeout`. A function of its own:
    /// written inline in the long test above, this wait crashed Swift 6.3.1 in one form and, in two
    /// others, timed out on rows the next query found (seen five times in a row); here it does not.
    static func selected(_ count: Int, from source: String, on c: Connection, within timeout: Duration) async throws -> Bool {
        try await TovTestDatabase.eventually(timeout: timeout) {
            try await TovTestDatabase.count("tov.selected", on: c, where: "source = '\(source)'") == count
        }
    }

    /// `tovd status --json` walks through the bootstrap in order with progress, tov.workers lists
    /// every instance, and once they stop the status says so.
    @Test func statusShowsEachPhaseAndEveryInstance() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 16, budgetRows: 10, bins: 2))
            try await c.execute("UPDATE tov.settings SET value = '40' WHERE key = 'pretrain_steps'")
            #expect(try await Self.status(c).daemonState == "no daemon running")
            let leader = try Self.daemon(conninfo, ["--instance", "alpha"], environment: ["TOVD_FAULT_PHASE_DELAY_MS": "1500"])
            defer { leader.terminate() }
            let standby = try Self.daemon(conninfo, ["--instance", "beta", "--no-leader"])
            defer { standby.terminate() }

            var seen: [String] = []
            var sawProgress = false
            let deadline = ContinuousClock.now + .seconds(180)
            var inserted = false
            var zvalInserted = false
            while ContinuousClock.now < deadline {
                let s = try await Self.status(c)
                if let a = s.activity, seen.last != a.name {
                    seen.append(a.name)
                }
                if s.activity?.name == "pretraining θ0", s.activity?.total == 40, s.activity?.done != nil { sawProgress = true }
                if !inserted, seen.contains("waiting for rows") {
                    #expect(s.activity?.total == 16)
                    try await TovTestDatabase.insertCandidates(40, on: c, prefix: "a row for the bootstrap", source: "boot")
                    inserted = true
                }
                if inserted, !zvalInserted, seen.contains("waiting for Z_val") {
                    try await c.execute("INSERT INTO tov.validation (prompt, response) VALUES ('a row', 'for the bootstrap')")
                    zvalInserted = true
                }
                if s.modelVersion != nil && s.nextModelVersion == nil && s.activity?.name == "idle" { break }
                // The observer's sampling pace (it records every phase it sees), not a wait for an event.
                try await Task.sleep(for: .milliseconds(150))
            }
            let expected = ["waiting for rows", "pretraining θ0", "base trajectory", "waiting for Z_val", "θ_val", "idle"]
            // Before the daemon's first decision the activity row still says idle.
            let order = Array(seen.filter(expected.contains).drop(while: { $0 == "idle" }))
            #expect(Self.isSubsequence(expected.filter { $0 != "waiting for Z_val" }, of: order) && order.first == "waiting for rows",
                    "phases seen: \(seen); \(leader.log.suffix(2000))")
            #expect(sawProgress, "pretraining never showed done/total steps; phases: \(seen)")

            let workers = try await StatusReport.load(on: c).workers
            #expect(Set(workers.map(\.instance)) == ["alpha", "beta"])
            #expect(workers.first { $0.instance == "alpha" }?.role == "leader")
            #expect(workers.allSatisfy { $0.state == "running" })
            leader.terminate()
            standby.terminate()
            #expect(await leader.waitForExit() == 0)
            #expect(await standby.waitForExit() == 0)
            let after = try await Self.status(c)
            #expect(after.daemonState == "no daemon running")
            #expect(after.workers.allSatisfy { $0.state == "stopped" })
            #expect(after.rendered(barWidth: nil).contains("no daemon running"))
        }
    }

    static func isSubsequence(_ needle: [String], of haystack: [String]) -> Bool {
        var i = needle.startIndex
        for item in haystack where i < needle.endIndex && item == needle[i] { i += 1 }
        return i == needle.endIndex
    }
}

final class TornReads: @unchecked Sendable {
    var count = 0
    var reads = 0
}
