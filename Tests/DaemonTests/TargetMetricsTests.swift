@testable import Daemon
import Foundation
import Testing

/// Each target's gauges, labelled by its name, from its row of tov.target_status; a dropped target's
/// series leave /metrics instead of keeping their last values.
@Suite("Per-target metrics")
struct TargetMetricsTests {
    static func lines(_ metrics: DaemonMetrics, _ prefix: String) -> [String] {
        String(decoding: metrics.render(), as: UTF8.self).split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }.sorted()
    }

    @Test func eachTargetHasItsSeriesAndADroppedOneLosesThem() {
        let metrics = DaemonMetrics()
        metrics.setTargets([
            .init(name: "default", modelVersion: 3, selectionVersion: 7, selectionSize: 50, zvalCurrent: true,
                  zvalSignal: ZvalSignal(verdict: "low", agreement: 0.25, transfer: 0.5, helpedShare: 0.75)),
            .init(name: "drop", modelVersion: 4, nextModelVersion: 6, nextModelStatus: "scoring", rescorePending: 120,
                  selectionVersion: 2, selectionSize: 30, zvalCurrent: false),
        ])
        #expect(Self.lines(metrics, "tovd_target_selection_size{") == [
            #"tovd_target_selection_size{target="default"} 50.0"#, #"tovd_target_selection_size{target="drop"} 30.0"#,
        ])
        #expect(Self.lines(metrics, "tovd_target_rescore_pending{") == [
            #"tovd_target_rescore_pending{target="default"} 0.0"#, #"tovd_target_rescore_pending{target="drop"} 120.0"#,
        ])
        #expect(Self.lines(metrics, "tovd_target_zval_current{") == [
            #"tovd_target_zval_current{target="default"} 1.0"#, #"tovd_target_zval_current{target="drop"} 0.0"#,
        ])
        // No signal measured yet is NaN (written "nan", which Prometheus parses), not 0: an alert on a
        // low agreement must not fire for it.
        #expect(Self.lines(metrics, "tovd_target_zval_agreement{") == [
            #"tovd_target_zval_agreement{target="default"} 0.25"#, #"tovd_target_zval_agreement{target="drop"} nan"#,
        ])
        #expect(Self.lines(metrics, "tovd_target_zval_helped_share{target=\"default\"}") == [#"tovd_target_zval_helped_share{target="default"} 0.75"#])
        #expect(Self.lines(metrics, "tovd_target_zval_transfer{target=\"default\"}") == [#"tovd_target_zval_transfer{target="default"} 0.5"#])
        #expect(Self.lines(metrics, "tovd_target_model_version{target=\"drop\"}") == [#"tovd_target_model_version{target="drop"} 4.0"#])

        // drop is dropped, default's selection moves on.
        metrics.setTargets([.init(name: "default", modelVersion: 3, selectionVersion: 8, selectionSize: 51, zvalCurrent: true)])
        #expect(Self.lines(metrics, "tovd_target_").allSatisfy { !$0.contains(#"target="drop""#) }, "\(Self.lines(metrics, "tovd_target_"))")
        #expect(Self.lines(metrics, "tovd_target_selection_size{") == [#"tovd_target_selection_size{target="default"} 51.0"#])
    }
}
