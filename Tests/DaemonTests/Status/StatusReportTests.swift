import Foundation
import Testing
@testable import Daemon

/// What status says about leadership, from a tov.status row alone (no database).
@Suite struct StatusReportTests {
    static func report(state: String, activity: String?) -> StatusReport {
        var r = StatusReport(poolRows: 10, scored: 0, pending: 0, rejected: 0, baseSubsetRows: 0, modelVersion: 1,
                             nextModelVersion: nil, nextModelStatus: nil, rescorePending: 0, zvalVersion: 1, zvalRows: 1,
                             selectionVersion: 1, selected: 0, lastRefreshStartedAt: nil, lastRefreshFinishedAt: nil,
                             oldestUnscoredAgeSeconds: nil, leader: nil)
        r.daemonState = state
        r.activity = activity.map { StatusReport.Activity(name: $0, done: 3, total: 10, unit: "epochs") }
        r.workers = [StatusReport.Worker(instance: "w1", role: "worker", state: "running", heartbeatAgeSeconds: 1, workers: 2)]
        return r
    }

    /// Every case of defect 12: who can lead decides the state; without a lease only a rescoring shows.
    @Test(arguments: [
        // (view's state, trainer activity, leader-capable instances) → (state, activity kept, text has)
        ("no leader", "θ_val", 0, "no instance can lead", false, "none can lead"),
        ("no leader", "θ_val", 2, "no leader", false, "2 of them can lead"),
        ("no leader", "θ_val", nil, "no leader", false, "if one runs"),
        ("no leader", "rescoring", 0, "no instance can lead", true, "rescoring"),
        ("running", "θ_val", 0, "running", true, "θ_val"),
        ("running", "θ_val", nil, "running", true, "θ_val"),
        ("no daemon running", nil, 0, "no daemon running", false, "no daemon running"),
    ] as [(String, String?, Int?, String, Bool, String)])
    func leadership(view: String, activity: String?, capable: Int?, state: String, kept: Bool, text: String) {
        var r = Self.report(state: view, activity: activity)
        r.applyLeadership(leaderCapableInstances: capable)
        #expect(r.daemonState == state)
        #expect((r.activity != nil) == kept)
        #expect(r.leaderCapableInstances == capable)
        let rendered = r.humanReadable
        #expect(rendered.contains(text), "\(rendered)")
        if state != "running" { #expect(!rendered.contains("θ_val"), "\(rendered)") }
        if state == "no instance can lead" { #expect(!rendered.contains("takes over"), "\(rendered)") }
    }

    /// One target reads as before; several add a line each, and --json always has `targets`.
    @Test func targetsSection() throws {
        var r = Self.report(state: "running", activity: nil)
        r.targets = [StatusReport.Target(name: "default", modelVersion: 1, selectionVersion: 1, zvalCurrent: true)]
        let single = r.humanReadable
        #expect(!single.contains("targets"), "\(single)")
        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(r)) as? [String: Any])
        #expect((json["targets"] as? [[String: Any]])?.first?["zval_current"] as? Bool == true)

        r.targets.append(StatusReport.Target(name: "drop", enabled: false, zvalVersion: 3, zvalRows: 7, modelVersion: 4,
                                             nextModelVersion: 5, nextModelStatus: "scoring", rescorePending: 20, rescoreTotal: 90,
                                             selectionVersion: 9, selectionSize: 12, lastRefreshFinishedAt: "2026-12-05 01:00:00+00",
                                             zvalCurrent: false))
        r.targets.append(StatusReport.Target(name: "chat"))
        let lines = r.humanReadable.split(separator: "\n").map(String.init)
        #expect(lines.contains("targets     3 (Z_val, model and selection above are the target 'default''s; each one:)"), "\(lines)")
        #expect(lines.contains("  drop     disabled (trains nothing; its selection stays); model 4, next 5 scoring (20 of 90 rows left); "
                               + "Z_val version 3, 7 rows; selection 12 rows (version 9), from an older Z_val (a refresh is due or runs); "
                               + "last refresh 2026-12-05 01:00:00+00"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("  chat     no model yet: waiting for Z_val (load it: tovd import FILE --into validation --target chat)") },
                "\(lines)")
        #expect(lines.contains { $0.hasPrefix("  default  model 1;") && $0.contains("from the current Z_val") }, "\(lines)")
    }

    /// The Z_val signal: a line of its own with what to do when it is fair or low, a clause in a target's
    /// line, an object in the JSON (null before one is measured), nothing in the text before then.
    @Test func zvalSignal() throws {
        var r = Self.report(state: "running", activity: nil)
        #expect(!r.humanReadable.contains("signal"))
        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(r)) as? [String: Any])
        #expect(json["zval_signal"] is NSNull)

        r.zvalSignal = ZvalSignal(verdict: "low", agreement: 0.214, transfer: 0.31, helpedShare: 0.655)
        let lines = r.humanReadable.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("signal      Z_val's halves agree 0.21 on the pool, carry 0.31 of what they teach to each other, help 66 % of its rows (low: the selection follows") },
                "\(lines)")
        json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(r)) as? [String: Any])
        let signal = try #require(json["zval_signal"] as? [String: Any])
        #expect(signal["verdict"] as? String == "low" && signal["agreement"] as? Double == 0.214 && signal["helped_share"] as? Double == 0.655)

        r.targets = [StatusReport.Target(name: "default"),
                     StatusReport.Target(name: "drop", zvalVersion: 2, zvalRows: 200, modelVersion: 3,
                                         zvalSignal: ZvalSignal(verdict: "good", agreement: 0.9, transfer: 0.93, helpedShare: 1))]
        #expect(r.humanReadable.contains("Z_val version 2, 200 rows, halves agree 0.90 on the pool, carry 0.93 of what they teach to each other, help 100 % of its rows (good); selection"),
                "\(r.humanReadable)")
        r.zvalSignal = ZvalSignal(verdict: "low")
        #expect(r.humanReadable.contains("signal      Z_val's one context, no halves to compare (low: "), "\(r.humanReadable)")
    }
}
