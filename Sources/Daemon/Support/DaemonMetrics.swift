import Foundation
import Prometheus
import Synchronization

/// The daemon's Prometheus metrics, in one registry rendered by `/metrics`.
public final class DaemonMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    public let rowsClaimed: Counter
    public let rowsReady: Counter
    public let rowsRejected: Counter
    public let rowsScored: TrackedCounter
    public let leaseLost: Counter
    public let batchSeconds: ValueHistogram
    public let lagSeconds: Gauge
    public let databaseUp: Gauge
    public let isLeader: TrackedGauge
    public let modelVersion: Gauge
    public let selectionVersion: Gauge
    public let selectionSize: Gauge
    public let refreshSeconds: Gauge
    public let settingsError: Gauge
    /// Each target's series, by target name (``setTargets(_:)``).
    private let targets = Mutex<[String: TargetGauges]>([:])

    public init() {
        rowsClaimed = registry.makeCounter(name: "tovd_rows_claimed_total", help: "Jobs claimed by this instance's workers.")
        rowsReady = registry.makeCounter(name: "tovd_rows_processed_total", help: "Candidate rows validated and recorded as ready for scoring.")
        rowsRejected = registry.makeCounter(name: "tovd_rows_rejected_total", help: "Candidate rows written to tov.rejects.")
        rowsScored = TrackedCounter(registry.makeCounter(name: "tovd_rows_scored_total", help: "Scores written (one per row per model version)."))
        leaseLost = registry.makeCounter(name: "tovd_leases_lost_total", help: "Claimed jobs whose lease expired before completion (results discarded).")
        batchSeconds = registry.makeValueHistogram(
            name: "tovd_batch_seconds", buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
            help: "Wall time from claim to commit of one batch.")
        lagSeconds = registry.makeGauge(name: "tovd_lag_seconds", help: "Age of the oldest row in the last batch when it was claimed.")
        databaseUp = registry.makeGauge(name: "tovd_database_up", help: "1 when the workers' database connections are up.")
        isLeader = TrackedGauge(registry.makeGauge(name: "tovd_leader", help: "1 when this instance holds the leader lease."))
        // Read from the database by every instance (InstanceReporter), not only the leader.
        modelVersion = registry.makeGauge(name: "tovd_model_version", help: "Complete model version used by tov.selected.")
        selectionVersion = registry.makeGauge(name: "tovd_selection_version", help: "Current selection version.")
        selectionSize = registry.makeGauge(name: "tovd_selection_size", help: "Rows in the current selection.")
        refreshSeconds = registry.makeGauge(name: "tovd_last_refresh_seconds", help: "Duration of the last θ_val refresh (training part).")
        settingsError = registry.makeGauge(name: "tovd_settings_error", help: "1 while a value in tov.settings cannot be used (tov.status.settings_error says which); the last good value is in force.")
    }

    /// One target's gauges, labelled `target="<name>"`: the unlabelled `tovd_model_version`,
    /// `tovd_selection_version` and `tovd_selection_size` describe the target `default` alone.
    struct TargetGauges {
        let modelVersion, selectionVersion, selectionSize, zvalCurrent, rescorePending: Gauge
        let zvalAgreement, zvalTransfer, zvalHelpedShare: Gauge

        init(_ registry: PrometheusCollectorRegistry, target: String) {
            let label = [("target", target)]
            modelVersion = registry.makeGauge(name: "tovd_target_model_version", labels: label,
                                              help: "The target's complete model version (0 before its first).")
            selectionVersion = registry.makeGauge(name: "tovd_target_selection_version", labels: label, help: "The target's selection version.")
            selectionSize = registry.makeGauge(name: "tovd_target_selection_size", labels: label, help: "Rows in the target's selection.")
            zvalCurrent = registry.makeGauge(name: "tovd_target_zval_current", labels: label,
                                             help: "1 when the target's selection is made from its current Z_val, 0 while a refresh is due or runs.")
            rescorePending = registry.makeGauge(name: "tovd_target_rescore_pending", labels: label,
                                                help: "Rows the target's next model version has left to rescore (0 when none is rescoring).")
            // The Z_val signal (docs/selection.md); NaN before one is measured, so an alert on a low
            // value does not fire for none.
            zvalAgreement = registry.makeGauge(name: "tovd_target_zval_agreement", labels: label,
                                               help: "How alike Z_val's halves rank the pool under the target's live version (tov.target_status.zval_agreement).")
            zvalTransfer = registry.makeGauge(name: "tovd_target_zval_transfer", labels: label,
                                              help: "How much of what one half of Z_val teaches holds for the other half's rows (tov.target_status.zval_transfer).")
            zvalHelpedShare = registry.makeGauge(name: "tovd_target_zval_helped_share", labels: label,
                                                 help: "Share of Z_val's rows the other half helps (tov.target_status.zval_helped_share; tov.zval_unhelped lists the others).")
        }

        var all: [Gauge] {
            [modelVersion, selectionVersion, selectionSize, zvalCurrent, rescorePending, zvalAgreement, zvalTransfer, zvalHelpedShare]
        }
    }

    /// Sets every target's gauges from its row of tov.target_status, and removes the series of
    /// targets that are gone (dropped), so a dashboard does not keep showing their last values.
    public func setTargets(_ rows: [StatusReport.Target]) {
        targets.withLock { gauges in
            for row in rows {
                let g = gauges[row.name] ?? TargetGauges(registry, target: row.name)
                gauges[row.name] = g
                g.modelVersion.set(to: Double(row.modelVersion ?? 0))
                g.selectionVersion.set(to: Double(row.selectionVersion))
                g.selectionSize.set(to: Double(row.selectionSize))
                g.zvalCurrent.set(to: row.zvalCurrent == true ? 1 : 0)
                g.rescorePending.set(to: Double(row.rescorePending ?? 0))
                g.zvalAgreement.set(to: row.zvalSignal?.agreement ?? .nan)
                g.zvalTransfer.set(to: row.zvalSignal?.transfer ?? .nan)
                g.zvalHelpedShare.set(to: row.zvalSignal?.helpedShare ?? .nan)
            }
            let present = Set(rows.map(\.name))
            for (name, g) in gauges where !present.contains(name) {
                g.all.forEach(registry.unregisterGauge)
                gauges[name] = nil
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

/// A counter whose running total this process can read back (the heartbeat reports rows/s from it).
public final class TrackedCounter: Sendable {
    private let counter: Counter
    private let total = Mutex<Int64>(0)
    init(_ counter: Counter) { self.counter = counter }
    public func increment(by amount: Int64) {
        counter.increment(by: amount)
        total.withLock { $0 += amount }
    }
    public var value: Int64 { total.withLock { $0 } }
}

/// A gauge whose last value this process can read back.
public final class TrackedGauge: Sendable {
    private let gauge: Gauge
    private let last = Mutex<Double>(0)
    init(_ gauge: Gauge) { self.gauge = gauge }
    public func set(to value: Double) {
        gauge.set(to: value)
        last.withLock { $0 = value }
    }
    public var value: Double { last.withLock { $0 } }
}


