import Foundation
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

    // MARK: - tovd target

    /// Every target's name, in id order (for messages that list them; tov_reader may read it).
    public static func targetNameGetMany(on connection: Connection) async throws -> [String] {
        try await connection.query("SELECT name FROM tov.targets ORDER BY target_id").map { try $0.get(String.self, "name") }
    }

    /// The target's id, or nil when no target has that name.
    public static func targetIDGet(name: String, on connection: Connection) async throws -> Int? {
        try await connection.query("SELECT target_id FROM tov.targets WHERE name = $1", [name]).first
            .map { Int(try $0.get(Int32.self, "target_id")) }
    }

    /// Whether the database's rule (`tov.target_name_is_valid`, the table's CHECK) accepts `name`.
    public static func targetNameIsValid(_ name: String, on connection: Connection) async throws -> Bool {
        try await connection.query("SELECT tov.target_name_is_valid($1) AS valid", [name]).first!.get(Bool.self, "valid")
    }

    /// Whether the database's rule for settings (`tov.setting_is_valid`, which the targets' CHECK
    /// applies per key) accepts `value` (JSON text) for `key`.
    public static func settingIsValid(key: String, json value: String, on connection: Connection) async throws -> Bool {
        try await connection.query("SELECT coalesce(tov.setting_is_valid($1, $2::jsonb), false) AS valid", [key, value]).first!
            .get(Bool.self, "valid")
    }

    public struct TargetInsertParams: Sendable {
        public var name: String
        /// A JSON object of the target's own settings (keys of ``Settings/targetKeys``).
        public var settingsJSON: String
        public var enabled: Bool
        public init(name: String, settingsJSON: String, enabled: Bool) {
            self.name = name
            self.settingsJSON = settingsJSON
            self.enabled = enabled
        }
    }

    /// Adds a target (its selection_state row comes with it, by trigger); nil when the name is taken.
    public static func targetInsert(_ p: TargetInsertParams, on connection: Connection) async throws -> Int? {
        try await connection.query("""
            INSERT INTO tov.targets (name, settings, enabled) VALUES ($1, $2::jsonb, $3)
            ON CONFLICT (name) DO NOTHING RETURNING target_id
            """, [p.name, p.settingsJSON, p.enabled]).first.map { Int(try $0.get(Int32.self, "target_id")) }
    }

    /// Removes the keys `unset` from the target's own settings and sets those of `set` (a JSON
    /// object); returns its settings after, or nil when no target has that name.
    public static func targetSettingsUpdate(name: String, unset: [String], set: String, on connection: Connection) async throws -> String? {
        // The keys travel as a JSON array: PQ binds an empty Swift array as bytea, not as text[].
        let keys = String(decoding: try JSONEncoder().encode(unset), as: UTF8.self)
        return try await connection.query("""
            UPDATE tov.targets SET settings = (settings - ARRAY(SELECT jsonb_array_elements_text($2::jsonb))) || $3::jsonb
            WHERE name = $1 RETURNING settings::text AS settings
            """, [name, keys, set]).first.map { try $0.get(String.self, "settings") }
    }

    /// Sets `enabled`; false when no target has that name.
    public static func targetEnabledUpdate(name: String, enabled: Bool, on connection: Connection) async throws -> Bool {
        try await !connection.query("UPDATE tov.targets SET enabled = $2 WHERE name = $1 RETURNING target_id", [name, enabled]).isEmpty
    }

    /// What dropping a target deletes (and the history it keeps).
    public struct TargetDataRow: Sendable, Equatable {
        public var targetID: Int
        public var zvalRows: Int64
        public var modelVersions: Int64
        public var scores: Int64
        public var selectionRows: Int64
        public var historyRows: Int64
        /// Whether any of it is data a person or the trainer made (history alone is kept anyway).
        public var isEmpty: Bool { zvalRows == 0 && modelVersions == 0 && scores == 0 && selectionRows == 0 }
    }

    public static func targetDataGet(name: String, on connection: Connection) async throws -> TargetDataRow? {
        try await connection.query("""
            SELECT t.target_id,
                   (SELECT count(*) FROM tov.validation v WHERE v.target = t.name) AS zval_rows,
                   (SELECT count(*) FROM tov.model_versions m WHERE m.target_id = t.target_id) AS model_versions,
                   (SELECT count(*) FROM tov.scores s JOIN tov.model_versions m USING (model_version) WHERE m.target_id = t.target_id) AS scores,
                   (SELECT count(*) FROM tov.selection_items i WHERE i.target_id = t.target_id) AS selection_rows,
                   (SELECT count(*) FROM tov.selection_history h WHERE h.target_id = t.target_id) AS history_rows
            FROM tov.targets t WHERE t.name = $1
            """, [name]).first.map { r in
            TargetDataRow(targetID: Int(try r.get(Int32.self, "target_id")), zvalRows: try r.get(Int64.self, "zval_rows"),
                          modelVersions: try r.get(Int64.self, "model_versions"), scores: try r.get(Int64.self, "scores"),
                          selectionRows: try r.get(Int64.self, "selection_rows"), historyRows: try r.get(Int64.self, "history_rows"))
        }
    }

    /// Deletes the target; its Z_val rows, model versions (with their checkpoints and scores) and
    /// selection go with it by cascade, its history stays. False when no target has that name.
    public static func targetDelete(name: String, on connection: Connection) async throws -> Bool {
        try await !connection.query("DELETE FROM tov.targets WHERE name = $1 RETURNING target_id", [name]).isEmpty
    }

    /// `tovd refresh --target T`: a refresh of that target only (target_id NULL asks for every one).
    public static func targetRefreshRequestInsert(targetID: Int, on connection: Connection) async throws -> Int64 {
        try await connection.query("INSERT INTO tov.training_requests (kind, target_id) VALUES ('refresh', $1) RETURNING id", [targetID])
            .first!.get(Int64.self, "id")
    }
}
