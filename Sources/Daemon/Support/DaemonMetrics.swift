import Prometheus

/// The daemon's Prometheus metrics, in one registry rendered by `/metrics`.
public final class DaemonMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    public let rowsClaimed: Counter
    public let rowsReady: Counter
    public let rowsRejected: Counter
    public let rowsScored: Counter
    public let leaseLost: Counter
    public let batchSeconds: ValueHistogram
    public let lagSeconds: Gauge
    public let databaseUp: Gauge
    public let isLeader: Gauge
    public let modelVersion: Gauge
    public let selectionVersion: Gauge
    public let selectionSize: Gauge
    public let refreshSeconds: Gauge

    public init() {
        rowsClaimed = registry.makeCounter(name: "tovd_rows_claimed_total", help: "Jobs claimed by this instance's workers.")
        rowsReady = registry.makeCounter(name: "tovd_rows_processed_total", help: "Candidate rows validated and recorded as ready for scoring.")
        rowsRejected = registry.makeCounter(name: "tovd_rows_rejected_total", help: "Candidate rows written to tov.rejects.")
        rowsScored = registry.makeCounter(name: "tovd_rows_scored_total", help: "Scores written (one per row per model version).")
        leaseLost = registry.makeCounter(name: "tovd_leases_lost_total", help: "Claimed jobs whose lease expired before completion (results discarded).")
        batchSeconds = registry.makeValueHistogram(
            name: "tovd_batch_seconds", buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
            help: "Wall time from claim to commit of one batch.")
        lagSeconds = registry.makeGauge(name: "tovd_lag_seconds", help: "Age of the oldest row in the last batch when it was claimed.")
        databaseUp = registry.makeGauge(name: "tovd_database_up", help: "1 when the workers' database connections are up.")
        isLeader = registry.makeGauge(name: "tovd_leader", help: "1 when this instance holds the leader lock.")
        modelVersion = registry.makeGauge(name: "tovd_model_version", help: "Complete model version used by tov.selected.")
        selectionVersion = registry.makeGauge(name: "tovd_selection_version", help: "Current selection version.")
        selectionSize = registry.makeGauge(name: "tovd_selection_size", help: "Rows in the current selection.")
        refreshSeconds = registry.makeGauge(name: "tovd_last_refresh_seconds", help: "Duration of the last θ_val refresh (training part).")
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
