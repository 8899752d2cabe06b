import PQ

/// What `tov.status` shows, typed. `tovd status` prints it; `--json` prints it as one object.
public struct StatusReport: Codable, Sendable, Equatable {
    public var poolRows: Int64
    public var scored: Int64
    public var pending: Int64
    public var rejected: Int64
    public var baseSubsetRows: Int64
    public var modelVersion: Int?
    public var nextModelVersion: Int?
    public var nextModelStatus: String?
    public var rescorePending: Int64
    public var zvalVersion: Int64
    public var zvalRows: Int64
    public var selectionVersion: Int64
    public var selected: Int64
    public var lastRefreshStartedAt: String?
    public var lastRefreshFinishedAt: String?
    public var oldestUnscoredAgeSeconds: Double?
    public var leader: String?
    /// Validated rows no complete model has scored yet (before the first model: all of them).
    public var waitingForModel: Int64 = 0
    /// "running", "no leader", "no instance can lead" (every running instance has `--no-leader`), or
    /// "no daemon running" (no instance with a fresh heartbeat).
    public var daemonState: String = "no daemon running"
    public var activity: Activity?
    public var settingsError: String?
    public var zvalRejected: Int64 = 0
    /// The θ0 the live selection's base model started from: an imported θ0's name (`tovd base import`),
    /// "bootstrap", or nil before the first complete model version.
    public var theta0: String?
    public var leaderHeartbeatAgeSeconds: Double?
    /// Running instances that may become the leader (not started with `--no-leader`); nil when the
    /// role reading status may not see it (tov_reader).
    public var leaderCapableInstances: Int?
    public var workers: [Worker] = []

    /// ``daemonState`` when instances run but every one was started with `--no-leader`.
    public static let noInstanceCanLead = "no instance can lead"

    /// What the leader's trainer is doing and how far it is (tov.leader_activity, or a rescoring
    /// counted from the queue).
    public struct Activity: Codable, Sendable, Equatable {
        public var name: String
        public var reason: String?
        public var detail: String?
        public var done: Int64?
        public var total: Int64?
        public var unit: String?
        public var ratePerSecond: Double?
        public var etaSeconds: Double?
        enum CodingKeys: String, CodingKey {
            case name, reason, detail, done, total, unit, ratePerSecond = "rate_per_second", etaSeconds = "eta_seconds"
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(reason, forKey: .reason)
            try c.encode(detail, forKey: .detail)
            try c.encode(done, forKey: .done)
            try c.encode(total, forKey: .total)
            try c.encode(unit, forKey: .unit)
            try c.encode(ratePerSecond, forKey: .ratePerSecond)
            try c.encode(etaSeconds, forKey: .etaSeconds)
        }
    }

    /// One row of tov.workers.
    public struct Worker: Codable, Sendable, Equatable {
        public var instance: String
        public var role: String
        public var state: String
        public var heartbeatAgeSeconds: Double
        public var workers: Int
        public var rowsPerSecond: Double?
        public var lastError: String?
        enum CodingKeys: String, CodingKey {
            case instance, role, state, heartbeatAgeSeconds = "heartbeat_age_seconds", workers
            case rowsPerSecond = "rows_per_second", lastError = "last_error"
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(instance, forKey: .instance)
            try c.encode(role, forKey: .role)
            try c.encode(state, forKey: .state)
            try c.encode(heartbeatAgeSeconds, forKey: .heartbeatAgeSeconds)
            try c.encode(workers, forKey: .workers)
            try c.encode(rowsPerSecond, forKey: .rowsPerSecond)
            try c.encode(lastError, forKey: .lastError)
        }
    }

    enum CodingKeys: String, CodingKey {
        case poolRows = "pool_rows", scored, pending, rejected, baseSubsetRows = "base_subset_rows"
        case modelVersion = "model_version", nextModelVersion = "next_model_version", nextModelStatus = "next_model_status"
        case rescorePending = "rescore_pending", zvalVersion = "zval_version", zvalRows = "zval_rows"
        case selectionVersion = "selection_version", selected, lastRefreshStartedAt = "last_refresh_started_at"
        case lastRefreshFinishedAt = "last_refresh_finished_at", oldestUnscoredAgeSeconds = "oldest_unscored_age_seconds", leader
        case waitingForModel = "waiting_for_model", daemonState = "daemon_state", activity, settingsError = "settings_error"
        case zvalRejected = "zval_rejected", leaderHeartbeatAgeSeconds = "leader_heartbeat_age_seconds"
        case leaderCapableInstances = "leader_capable_instances", workers, theta0
    }

    /// Encodes absent values as `null` so scripts always find every key.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(poolRows, forKey: .poolRows)
        try c.encode(scored, forKey: .scored)
        try c.encode(pending, forKey: .pending)
        try c.encode(rejected, forKey: .rejected)
        try c.encode(baseSubsetRows, forKey: .baseSubsetRows)
        try c.encode(modelVersion, forKey: .modelVersion)
        try c.encode(nextModelVersion, forKey: .nextModelVersion)
        try c.encode(nextModelStatus, forKey: .nextModelStatus)
        try c.encode(rescorePending, forKey: .rescorePending)
        try c.encode(zvalVersion, forKey: .zvalVersion)
        try c.encode(zvalRows, forKey: .zvalRows)
        try c.encode(selectionVersion, forKey: .selectionVersion)
        try c.encode(selected, forKey: .selected)
        try c.encode(lastRefreshStartedAt, forKey: .lastRefreshStartedAt)
        try c.encode(lastRefreshFinishedAt, forKey: .lastRefreshFinishedAt)
        try c.encode(oldestUnscoredAgeSeconds, forKey: .oldestUnscoredAgeSeconds)
        try c.encode(leader, forKey: .leader)
        try c.encode(waitingForModel, forKey: .waitingForModel)
        try c.encode(daemonState, forKey: .daemonState)
        try c.encode(activity, forKey: .activity)
        try c.encode(settingsError, forKey: .settingsError)
        try c.encode(zvalRejected, forKey: .zvalRejected)
        try c.encode(leaderHeartbeatAgeSeconds, forKey: .leaderHeartbeatAgeSeconds)
        try c.encode(leaderCapableInstances, forKey: .leaderCapableInstances)
        try c.encode(workers, forKey: .workers)
        try c.encode(theta0, forKey: .theta0)
    }

    public static func load(on connection: Connection) async throws -> StatusReport {
        var report = try await StatusQueries.statusGet(on: connection)
        report.workers = try await StatusQueries.workerGetMany(on: connection)
        report.applyLeadership(leaderCapableInstances: try await StatusQueries.instanceCountLeaderCapable(on: connection))
        return report
    }

    /// What tov.status cannot tell (defect 12 of issue 24): whether any running instance can lead,
    /// and that the trainer's activity row belongs to the last leader, not to a live one.
    ///
    /// Without a live lease, nothing trains: tov.leader_activity still holds what the dead leader was
    /// doing, so it is not shown as current. A rescoring is the exception: it is counted from the
    /// queue, and workers carry it on without a leader (only the switch to it waits for one).
    public mutating func applyLeadership(leaderCapableInstances: Int?) {
        self.leaderCapableInstances = leaderCapableInstances
        guard daemonState == "no leader" || daemonState == Self.noInstanceCanLead else { return }
        if leaderCapableInstances == 0 { daemonState = Self.noInstanceCanLead }
        if activity?.name != "rescoring" { activity = nil }
    }

    /// A few lines for a person.
    public var humanReadable: String { rendered(barWidth: nil) }

    /// The text of `tovd status`; with `barWidth`, the activity gets a progress bar (`--watch`).
    public func rendered(barWidth: Int?) -> String {
        var lines: [String] = []
        let running = workers.filter { $0.state == "running" }.count
        switch daemonState {
        case "no daemon running":
            lines.append("daemon      no daemon running: no tovd instance has sent a heartbeat in 30 s (start one: tovd run)")
        case Self.noInstanceCanLead:
            lines.append("daemon      \(running) instance(s) running, none can lead (every one has --no-leader): rows are validated "
                + "and scored, but nothing trains and the selection does not change until a `tovd run` without --no-leader starts")
        case "no leader":
            let takeOver = switch leaderCapableInstances {
            case nil: "an instance started without --no-leader takes over within seconds, if one runs"
            case let n?: "\(n) of them can lead; one takes over within seconds"
            }
            lines.append("daemon      \(running) instance(s) running, no leader (\(takeOver))")
        default:
            let age = leaderHeartbeatAgeSeconds.map { String(format: ", heartbeat %.0f s ago", $0) } ?? ""
            lines.append("daemon      leader \(leader ?? "?")\(age); \(running) instance(s) running")
        }
        if let activity, daemonState != "no daemon running" {
            lines.append("doing       " + Self.describe(activity, barWidth: barWidth))
        } else if daemonState == "no leader" || daemonState == Self.noInstanceCanLead {
            lines.append("doing       nothing: no leader (the last leader's activity stopped with it)")
        }
        if let settingsError { lines.append("settings    cannot use: \(settingsError) (the last good values stay in force)") }
        lines.append("pool        \(poolRows) rows: \(scored) scored, \(waitingForModel) waiting to be scored, \(pending) being validated, \(rejected) rejected, \(baseSubsetRows) in the base subset U")
        lines.append("Z_val       version \(zvalVersion), \(zvalRows) rows" + (zvalRejected > 0 ? ", \(zvalRejected) left out (see tov.validation_rejects)" : ""))
        if let modelVersion {
            lines.append("model       version \(modelVersion) (complete), from θ0 \(theta0.map { $0 == "bootstrap" ? "bootstrap (pretrained on U)" : "\"\($0)\" (imported)" } ?? "?")")
        } else {
            lines.append("model       none yet" + (activity.map { ": \($0.name)" } ?? ""))
        }
        if let nextModelVersion {
            lines.append("next model  version \(nextModelVersion) \(nextModelStatus ?? ""), \(rescorePending) rows left to rescore")
        }
        lines.append("selection   version \(selectionVersion), \(selected) rows")
        if let age = oldestUnscoredAgeSeconds { lines.append("oldest row being validated  \(Int(age)) s") }
        for w in workers where w.state != "stopped" || w.heartbeatAgeSeconds < 600 {
            let rate = w.rowsPerSecond.map { String(format: "%.1f rows/s", $0) } ?? "-"
            let error = w.lastError.map { "; last error: \($0.prefix(120))" } ?? ""
            lines.append("  \(w.instance)  \(w.role), \(w.state), \(w.workers) worker(s), \(rate), heartbeat \(Int(w.heartbeatAgeSeconds)) s ago\(error)")
        }
        return lines.joined(separator: "\n")
    }

    /// "pretraining θ0 (bootstrap) [#####-----] 120/200 steps, 3.1 steps/s, ETA 26 s".
    static func describe(_ a: Activity, barWidth: Int?) -> String {
        var text = a.name
        if let reason = a.reason { text += " (\(reason))" }
        if let done = a.done, let total = a.total, total > 0 {
            if let width = barWidth {
                let filled = Int((Double(min(done, total)) / Double(total) * Double(width)).rounded(.down))
                text += " [" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
            }
            text += " \(done)/\(total)" + (a.unit.map { " \($0)" } ?? "")
            if let rate = a.ratePerSecond { text += String(format: ", %.1f %@/s", rate, a.unit ?? "") }
            if let eta = a.etaSeconds { text += ", ETA " + formatDuration(eta) }
        }
        if let detail = a.detail { text += ": \(detail)" }
        return text
    }

    static func formatDuration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 120 { return "\(s) s" }
        if s < 7200 { return "\(s / 60) min" }
        return String(format: "%.1f h", Double(s) / 3600)
    }
}
