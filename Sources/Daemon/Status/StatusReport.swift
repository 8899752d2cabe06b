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
    /// The live version's Z_val signal (docs/selection.md); nil before one is measured.
    public var zvalSignal: ZvalSignal?
    public var leaderHeartbeatAgeSeconds: Double?
    /// Running instances that may become the leader (not started with `--no-leader`); nil when the
    /// role reading status may not see it (tov_reader).
    public var leaderCapableInstances: Int?
    public var workers: [Worker] = []
    /// Every target (tov.target_status), in id order; the fields above describe the target
    /// `default` (as tov.status does).
    public var targets: [Target] = []

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

    /// One row of tov.target_status: a target's Z_val, model versions, selection and freshness.
    public struct Target: Codable, Sendable, Equatable {
        public var name: String
        public var enabled: Bool
        /// The target's own settings (tov.targets.settings), each value as JSON text; a key it does
        /// not set is the global one of tov.settings.
        public var settings: [String: String]
        public var zvalVersion: Int64
        public var zvalRows: Int64
        public var zvalRejected: Int64
        public var modelVersion: Int?
        public var baseVersion: Int?
        public var nextModelVersion: Int?
        public var nextModelStatus: String?
        public var nextModelReason: String?
        /// While the next version is rescored: rows left of ``rescoreTotal``.
        public var rescorePending: Int64?
        public var rescoreTotal: Int64?
        public var selectionVersion: Int64
        public var selectionSize: Int64
        public var selectionComputedAt: String?
        public var lastRefreshFinishedAt: String?
        /// Whether the complete version was trained on the target's current Z_val (false while a
        /// refresh is due or runs; nil before the first version).
        public var zvalCurrent: Bool?
        /// The live version's Z_val signal, as ``StatusReport/zvalSignal`` for the target `default`.
        public var zvalSignal: ZvalSignal?

        public init(name: String, enabled: Bool = true, settings: [String: String] = [:], zvalVersion: Int64 = 0, zvalRows: Int64 = 0,
                    zvalRejected: Int64 = 0, modelVersion: Int? = nil, baseVersion: Int? = nil, nextModelVersion: Int? = nil,
                    nextModelStatus: String? = nil, nextModelReason: String? = nil, rescorePending: Int64? = nil,
                    rescoreTotal: Int64? = nil, selectionVersion: Int64 = 0, selectionSize: Int64 = 0,
                    selectionComputedAt: String? = nil, lastRefreshFinishedAt: String? = nil, zvalCurrent: Bool? = nil,
                    zvalSignal: ZvalSignal? = nil) {
            self.name = name
            self.enabled = enabled
            self.settings = settings
            self.zvalVersion = zvalVersion
            self.zvalRows = zvalRows
            self.zvalRejected = zvalRejected
            self.modelVersion = modelVersion
            self.baseVersion = baseVersion
            self.nextModelVersion = nextModelVersion
            self.nextModelStatus = nextModelStatus
            self.nextModelReason = nextModelReason
            self.rescorePending = rescorePending
            self.rescoreTotal = rescoreTotal
            self.selectionVersion = selectionVersion
            self.selectionSize = selectionSize
            self.selectionComputedAt = selectionComputedAt
            self.lastRefreshFinishedAt = lastRefreshFinishedAt
            self.zvalCurrent = zvalCurrent
            self.zvalSignal = zvalSignal
        }

        enum CodingKeys: String, CodingKey {
            case name, enabled, settings, zvalVersion = "zval_version", zvalRows = "zval_rows", zvalRejected = "zval_rejected"
            case modelVersion = "model_version", baseVersion = "base_version", nextModelVersion = "next_model_version"
            case nextModelStatus = "next_model_status", nextModelReason = "next_model_reason", rescorePending = "rescore_pending"
            case rescoreTotal = "rescore_total", selectionVersion = "selection_version", selectionSize = "selection_size"
            case selectionComputedAt = "selection_computed_at", lastRefreshFinishedAt = "last_refresh_finished_at"
            case zvalCurrent = "zval_current", zvalSignal = "zval_signal"
        }

        /// Absent values as `null`, as for the report itself.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(enabled, forKey: .enabled)
            try c.encode(settings, forKey: .settings)
            try c.encode(zvalVersion, forKey: .zvalVersion)
            try c.encode(zvalRows, forKey: .zvalRows)
            try c.encode(zvalRejected, forKey: .zvalRejected)
            try c.encode(modelVersion, forKey: .modelVersion)
            try c.encode(baseVersion, forKey: .baseVersion)
            try c.encode(nextModelVersion, forKey: .nextModelVersion)
            try c.encode(nextModelStatus, forKey: .nextModelStatus)
            try c.encode(nextModelReason, forKey: .nextModelReason)
            try c.encode(rescorePending, forKey: .rescorePending)
            try c.encode(rescoreTotal, forKey: .rescoreTotal)
            try c.encode(selectionVersion, forKey: .selectionVersion)
            try c.encode(selectionSize, forKey: .selectionSize)
            try c.encode(selectionComputedAt, forKey: .selectionComputedAt)
            try c.encode(lastRefreshFinishedAt, forKey: .lastRefreshFinishedAt)
            try c.encode(zvalCurrent, forKey: .zvalCurrent)
            try c.encode(zvalSignal, forKey: .zvalSignal)
        }

        /// "model 4, next 5 scoring (120 of 500 rows left); Z_val version 6, 40 rows; selection 1200
        /// rows (version 17), from the current Z_val; last refresh …": one line of `tovd status`.
        public var summary: String {
            var parts: [String] = []
            if !enabled { parts.append("disabled (trains nothing; its selection stays)") }
            var model = modelVersion.map { "model \($0)" } ?? "no model yet"
            if let next = nextModelVersion {
                model += ", next \(next) \(nextModelStatus ?? "")"
                if let pending = rescorePending, let total = rescoreTotal { model += " (\(pending) of \(total) rows left)" }
                if let reason = nextModelReason { model += ": \(reason)" }
            } else if modelVersion == nil && zvalRows == 0 {
                let flag = name == Settings.defaultTarget ? "" : " --target \(name)"
                model += ": waiting for Z_val (load it: tovd import FILE --into validation\(flag))"
            }
            parts.append(model)
            parts.append("Z_val version \(zvalVersion), \(zvalRows) rows" + (zvalRejected > 0 ? " (\(zvalRejected) left out)" : "")
                         + (zvalSignal.map { ", \($0.text(advice: false))" } ?? ""))
            var selection = "selection \(selectionSize) rows (version \(selectionVersion))"
            switch zvalCurrent {
            case true?: selection += ", from the current Z_val"
            case false?: selection += ", from an older Z_val (a refresh is due or runs)"
            case nil: break
            }
            parts.append(selection)
            parts.append("last refresh " + (lastRefreshFinishedAt ?? "never"))
            return parts.joined(separator: "; ")
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
        case leaderCapableInstances = "leader_capable_instances", workers, theta0, targets
        case zvalSignal = "zval_signal"
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
        try c.encode(targets, forKey: .targets)
        try c.encode(zvalSignal, forKey: .zvalSignal)
    }

    public static func load(on connection: Connection) async throws -> StatusReport {
        var report = try await StatusQueries.statusGet(on: connection)
        report.workers = try await StatusQueries.workerGetMany(on: connection)
        report.targets = try await StatusQueries.targetStatusGetMany(on: connection)
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
        if let zvalSignal { lines.append("signal      Z_val's " + zvalSignal.text(advice: true)) }
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
        // One target reads as before; with several, the lines above are the target 'default''s
        // (as tov.status is), and each target gets a line of its own.
        if targets.count > 1 {
            lines.append("targets     \(targets.count) (Z_val, model and selection above are the target 'default''s; each one:)")
            let width = targets.map(\.name.count).max() ?? 0
            for t in targets {
                lines.append("  " + t.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + t.summary)
            }
        }
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
