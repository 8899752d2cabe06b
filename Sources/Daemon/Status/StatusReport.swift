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
    /// "running", "no leader", or "no daemon running" (no instance with a fresh heartbeat).
    public var daemonState: String = "no daemon running"
    public var activity: Activity?
    public var settingsError: String?
    public var zvalRejected: Int64 = 0
    public var leaderHeartbeatAgeSeconds: Double?
    public var workers: [Worker] = []

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
        case zvalRejected = "zval_rejected", leaderHeartbeatAgeSeconds = "leader_heartbeat_age_seconds", workers
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
        try c.encode(workers, forKey: .workers)
    }

    public static func load(on connection: Connection) async throws -> StatusReport {
        guard let r = try await connection.query(Queries.statusGet).first else {
            throw DaemonError(.database, "tov.status returned no row; run `tovd migrate up`")
        }
        func optionalInt(_ i: Int) throws -> Int? { r.isNull(i) ? nil : Int(try r.get(Int32.self, i)) }
        func optionalString(_ i: Int) throws -> String? { r.isNull(i) ? nil : try r.get(String.self, i) }
        func optionalInt64(_ i: Int) throws -> Int64? { r.isNull(i) ? nil : try r.get(Int64.self, i) }
        func optionalDouble(_ i: Int) throws -> Double? { r.isNull(i) ? nil : try r.get(Double.self, i) }
        var report = StatusReport(
            poolRows: try r.get(Int64.self, 0), scored: try r.get(Int64.self, 1), pending: try r.get(Int64.self, 2),
            rejected: try r.get(Int64.self, 3), baseSubsetRows: try r.get(Int64.self, 4),
            modelVersion: try optionalInt(5), nextModelVersion: try optionalInt(6), nextModelStatus: try optionalString(7),
            rescorePending: try r.get(Int64.self, 8), zvalVersion: try r.get(Int64.self, 9), zvalRows: try r.get(Int64.self, 10),
            selectionVersion: try r.get(Int64.self, 11), selected: try r.get(Int64.self, 12),
            lastRefreshStartedAt: try optionalString(13), lastRefreshFinishedAt: try optionalString(14),
            oldestUnscoredAgeSeconds: try optionalDouble(15), leader: try optionalString(16))
        report.waitingForModel = try r.get(Int64.self, 17)
        report.daemonState = try r.get(String.self, 18)
        if let name = try optionalString(19) {
            report.activity = Activity(name: name, reason: try optionalString(20), detail: try optionalString(21),
                                       done: try optionalInt64(22), total: try optionalInt64(23), unit: try optionalString(24),
                                       ratePerSecond: try optionalDouble(25), etaSeconds: try optionalDouble(26))
        }
        report.leaderHeartbeatAgeSeconds = try optionalDouble(28)
        report.settingsError = try optionalString(29)
        report.zvalRejected = try r.get(Int64.self, 30)
        report.workers = try await connection.query(Queries.workersGet).map { w in
            Worker(instance: try w.get(String.self, 0), role: try w.get(String.self, 1), state: try w.get(String.self, 2),
                   heartbeatAgeSeconds: try w.get(Double.self, 3), workers: Int(try w.get(Int32.self, 4)),
                   rowsPerSecond: w.isNull(5) ? nil : try w.get(Double.self, 5), lastError: w.isNull(6) ? nil : try w.get(String.self, 6))
        }
        return report
    }

    /// A few lines for a person.
    public var humanReadable: String { rendered(barWidth: nil) }

    /// The text of `tovd status`; with `barWidth`, the activity gets a progress bar (`--watch`).
    public func rendered(barWidth: Int?) -> String {
        var lines: [String] = []
        switch daemonState {
        case "no daemon running":
            lines.append("daemon      no daemon running: no tovd instance has sent a heartbeat in 30 s (start one: tovd run)")
        case "no leader":
            lines.append("daemon      \(workers.filter { $0.state == "running" }.count) instance(s) running, no leader (a standby takes over within seconds)")
        default:
            let age = leaderHeartbeatAgeSeconds.map { String(format: ", heartbeat %.0f s ago", $0) } ?? ""
            lines.append("daemon      leader \(leader ?? "?")\(age); \(workers.filter { $0.state == "running" }.count) instance(s) running")
        }
        if let activity, daemonState != "no daemon running" {
            lines.append("doing       " + Self.describe(activity, barWidth: barWidth))
        }
        if let settingsError { lines.append("settings    cannot use: \(settingsError) (the last good values stay in force)") }
        lines.append("pool        \(poolRows) rows: \(scored) scored, \(waitingForModel) waiting to be scored, \(pending) being validated, \(rejected) rejected, \(baseSubsetRows) in the base subset U")
        lines.append("Z_val       version \(zvalVersion), \(zvalRows) rows" + (zvalRejected > 0 ? ", \(zvalRejected) left out (see tov.validation_rejects)" : ""))
        if let modelVersion {
            lines.append("model       version \(modelVersion) (complete)")
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
