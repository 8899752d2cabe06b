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

    enum CodingKeys: String, CodingKey {
        case poolRows = "pool_rows", scored, pending, rejected, baseSubsetRows = "base_subset_rows"
        case modelVersion = "model_version", nextModelVersion = "next_model_version", nextModelStatus = "next_model_status"
        case rescorePending = "rescore_pending", zvalVersion = "zval_version", zvalRows = "zval_rows"
        case selectionVersion = "selection_version", selected, lastRefreshStartedAt = "last_refresh_started_at"
        case lastRefreshFinishedAt = "last_refresh_finished_at", oldestUnscoredAgeSeconds = "oldest_unscored_age_seconds", leader
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
    }

    public static func load(on connection: Connection) async throws -> StatusReport {
        guard let r = try await connection.query(Queries.statusGet).first else {
            throw DaemonError(.database, "tov.status returned no row; run `tovd migrate up`")
        }
        func optionalInt(_ i: Int) throws -> Int? { r.isNull(i) ? nil : Int(try r.get(Int32.self, i)) }
        func optionalString(_ i: Int) throws -> String? { r.isNull(i) ? nil : try r.get(String.self, i) }
        return StatusReport(
            poolRows: try r.get(Int64.self, 0), scored: try r.get(Int64.self, 1), pending: try r.get(Int64.self, 2),
            rejected: try r.get(Int64.self, 3), baseSubsetRows: try r.get(Int64.self, 4),
            modelVersion: try optionalInt(5), nextModelVersion: try optionalInt(6), nextModelStatus: try optionalString(7),
            rescorePending: try r.get(Int64.self, 8), zvalVersion: try r.get(Int64.self, 9), zvalRows: try r.get(Int64.self, 10),
            selectionVersion: try r.get(Int64.self, 11), selected: try r.get(Int64.self, 12),
            lastRefreshStartedAt: try optionalString(13), lastRefreshFinishedAt: try optionalString(14),
            oldestUnscoredAgeSeconds: r.isNull(15) ? nil : try r.get(Double.self, 15), leader: try optionalString(16))
    }

    /// A few lines for a person.
    public var humanReadable: String {
        var lines: [String] = []
        lines.append("pool        \(poolRows) rows: \(scored) scored, \(pending) waiting, \(rejected) rejected, \(baseSubsetRows) in the base subset U")
        lines.append("Z_val       version \(zvalVersion), \(zvalRows) rows")
        if let modelVersion {
            lines.append("model       version \(modelVersion) (complete)")
        } else {
            lines.append("model       none yet: needs |U| ready rows and a non-empty tov.validation")
        }
        if let nextModelVersion {
            lines.append("refresh     version \(nextModelVersion) \(nextModelStatus ?? ""), \(rescorePending) rows left to rescore")
        }
        lines.append("selection   version \(selectionVersion), \(selected) rows")
        if let age = oldestUnscoredAgeSeconds { lines.append("oldest waiting row  \(Int(age)) s") }
        if let leader { lines.append("leader      \(leader)") }
        return lines.joined(separator: "\n")
    }
}
