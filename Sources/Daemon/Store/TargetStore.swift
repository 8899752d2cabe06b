import PQ

/// Statements on `tov.targets`: what the settings cache reads, and what `tovd target` writes.
public enum TargetStore {
    /// Every target with its own settings, one row per (target, key); a target that sets nothing has
    /// one row with a NULL key.
    static let targetSettingsGetAll = """
        SELECT t.target_id, t.name, t.enabled, e.key, e.value::text AS value
        FROM tov.targets t LEFT JOIN LATERAL jsonb_each(t.settings) e ON true
        ORDER BY t.target_id, e.key
        """

    static func targetRows(on connection: Connection) async throws -> [TargetRow] {
        var rows: [TargetRow] = []
        for row in try await connection.query(targetSettingsGetAll) {
            let id = Int(try row.get(Int32.self, "target_id"))
            if rows.last?.id != id {
                rows.append(TargetRow(id: id, name: try row.get(String.self, "name"), enabled: try row.get(Bool.self, "enabled"), settings: []))
            }
            if let key = try row.getOptional(String.self, "key") {
                rows[rows.count - 1].settings.append((key, try row.get(String.self, "value")))
            }
        }
        return rows
    }
}
