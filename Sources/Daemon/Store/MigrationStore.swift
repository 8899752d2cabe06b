import PQ

/// The statements of the migration runner's own version table, `tov_migrate.versions` (River keeps
/// its migration table apart from the schema it migrates the same way).
enum MigrationStore {
    static let versionTableCreate = """
        CREATE SCHEMA IF NOT EXISTS tov_migrate;
        CREATE TABLE IF NOT EXISTS tov_migrate.versions (
            version     integer PRIMARY KEY,
            name        text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now()
        );
        """
    static let versionTableExists = "SELECT to_regclass('tov_migrate.versions') IS NOT NULL AS present"
    static let versionMaxGet = "SELECT coalesce(max(version), 0)::bigint AS version FROM tov_migrate.versions"
    static let versionInsert = "INSERT INTO tov_migrate.versions (version, name) VALUES ($1, $2)"
    static let versionDelete = "DELETE FROM tov_migrate.versions WHERE version = $1"
    static let versionGetMany = "SELECT version, applied_at::text AS applied_at FROM tov_migrate.versions"

    /// The schema version recorded in the database (0 when tovd never ran there).
    static func versionCurrent(on connection: Connection) async throws -> Int {
        guard try await connection.query(versionTableExists).first?.get(Bool.self, "present") == true else { return 0 }
        return Int(try await connection.query(versionMaxGet).first!.get(Int64.self, "version"))
    }

    /// When each applied version was applied.
    static func versionAppliedAt(on connection: Connection) async throws -> [Int: String] {
        var appliedAt: [Int: String] = [:]
        for row in try await connection.query(versionGetMany) {
            appliedAt[Int(try row.get(Int32.self, "version"))] = try row.get(String.self, "applied_at")
        }
        return appliedAt
    }
}
