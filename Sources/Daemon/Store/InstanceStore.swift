import PQ

/// This process's row in tov.instances (what tov.workers and "no daemon running" read), and the
/// figures every instance copies into its metrics and systemd STATUS=.
enum InstanceStore {
    struct HeartbeatParams {
        var holder: String
        var instance: String
        var host: String
        var pid: Int32
        var workers: Int
        var leaderCapable: Bool
        var rowsScored: Int64
        var rowsPerSecond: Double?
        /// The last error of any service of this instance since the previous heartbeat, or nil to keep
        /// the one already recorded.
        var lastError: String?
        var settingsError: String?
    }

    static func heartbeat(_ p: HeartbeatParams, on connection: Connection) async throws {
        try await connection.execute(instanceUpsert, [
            p.holder, p.instance, p.host, p.pid, p.workers, p.leaderCapable, p.rowsScored, p.rowsPerSecond, p.lastError, p.settingsError,
        ])
    }

    static let instanceUpsert = """
        INSERT INTO tov.instances (holder, instance, host, pid, workers, leader_capable, rows_scored, rows_per_second,
                                   last_error, last_error_at, settings_error)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $9::text IS NOT NULL THEN now() END, $10)
        ON CONFLICT (holder) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL, rows_scored = EXCLUDED.rows_scored,
            rows_per_second = EXCLUDED.rows_per_second,
            last_error = coalesce(EXCLUDED.last_error, tov.instances.last_error),
            last_error_at = coalesce(EXCLUDED.last_error_at, tov.instances.last_error_at),
            settings_error = EXCLUDED.settings_error
        """

    static let instanceStop = "UPDATE tov.instances SET stopped_at = now(), heartbeat_at = now() WHERE holder = $1"
    static let instanceForgetStaleMany = "DELETE FROM tov.instances WHERE heartbeat_at < now() - interval '1 day'"

    struct Figures {
        var modelVersion: Int?
        var selectionVersion: Int64
        var selectionSize: Int64
        /// Seconds the newest trained version took to train.
        var lastRefreshSeconds: Double?
        /// "rescoring", or the leader's activity with its progress ("base trajectory 1/4 epochs").
        var activityLine: String
    }

    static func figures(on connection: Connection) async throws -> Figures? {
        try await connection.query(figuresGet).first.map { r in
            let next = try r.getOptional(String.self, "next_status")
            var activity = next == "scoring" ? "rescoring" : try r.get(String.self, "activity")
            if next != "scoring", let done = try r.getOptional(Int64.self, "done"), let total = try r.getOptional(Int64.self, "total") {
                activity += " \(done)/\(total) \(try r.getOptional(String.self, "unit") ?? "")"
            }
            return Figures(modelVersion: try r.getOptional(Int32.self, "model_version").map(Int.init),
                           selectionVersion: try r.get(Int64.self, "selection_version"),
                           selectionSize: try r.get(Int64.self, "selection_size"),
                           lastRefreshSeconds: try r.getOptional(Double.self, "refresh_seconds"), activityLine: activity)
        }
    }

    /// The target `default`'s figures (as tov.status gives them): with several targets a model
    /// version and a selection are per target, and a bare `status = 'complete'` subquery would see
    /// one row per target.
    static let figuresGet = """
        SELECT (SELECT model_version FROM tov.model_versions WHERE status = 'complete' AND target_id = t.target_id) AS model_version,
               s.selection_version, (SELECT count(*) FROM tov.selection_items i WHERE i.target_id = t.target_id) AS selection_size,
               (SELECT extract(epoch FROM trained_at - created_at)::float8 FROM tov.model_versions
                WHERE trained_at IS NOT NULL ORDER BY model_version DESC LIMIT 1) AS refresh_seconds,
               a.activity, a.done, a.total, a.unit,
               (SELECT status::text FROM tov.model_versions WHERE status IN ('training', 'scoring') AND target_id = t.target_id) AS next_status
        FROM tov.targets t JOIN tov.selection_state s USING (target_id) CROSS JOIN tov.leader_activity a
        WHERE t.name = 'default'
        """
}
