import Logging
import PQ

/// Applies, reverts, lists and validates the embedded migrations against one database.
///
/// Every operation holds a session advisory lock, so two `tovd migrate up` (or two daemons starting
/// at once) run one after the other and the second finds nothing left to do.
public struct Migrator: Sendable {
    /// `tovd_mig` in ASCII: the advisory lock key that serialises migrations.
    static let lockKey: Int64 = 0x746F_7664_5F6D_6967

    public struct AppliedMigration: Sendable {
        public var migration: Migration
        public var appliedAt: String?
    }

    public let migrations: [Migration]
    let logger: Logger

    public init(migrations: [Migration] = Migration.all, logger: Logger = Logger(label: "tovd.migrate")) {
        self.migrations = migrations
        self.logger = logger
    }

    public var latestVersion: Int { migrations.last?.version ?? 0 }

    /// The schema version recorded in the database (0 when tovd never ran there).
    public func currentVersion(on connection: Connection) async throws -> Int {
        try await MigrationStore.versionCurrent(on: connection)
    }

    /// Applies every migration above the current version, up to `target` (default: all).
    /// Returns the versions applied.
    @discardableResult
    public func up(on connection: Connection, to target: Int? = nil) async throws -> [Int] {
        try await withLock(connection) {
            try await connection.simpleQuery(MigrationStore.versionTableCreate)
            let current = try await currentVersion(on: connection)
            try refuseNewer(current)
            let goal = min(target ?? latestVersion, latestVersion)
            var applied: [Int] = []
            for migration in migrations where migration.version > current && migration.version <= goal {
                try await connection.transaction { tx in
                    try await tx.simpleQuery(migration.up)
                    try await tx.execute(MigrationStore.versionInsert, [migration.version, migration.name])
                }
                logger.info("migration applied", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                applied.append(migration.version)
            }
            return applied
        }
    }

    /// Reverts the `steps` newest applied migrations. Returns the versions reverted.
    @discardableResult
    public func down(on connection: Connection, steps: Int = 1) async throws -> [Int] {
        try await withLock(connection) {
            let current = try await currentVersion(on: connection)
            try refuseNewer(current)
            var reverted: [Int] = []
            for migration in migrations.reversed() where migration.version <= current && reverted.count < steps {
                try await connection.transaction { tx in
                    try await tx.simpleQuery(migration.down)
                    try await tx.execute(MigrationStore.versionDelete, [migration.version])
                }
                logger.info("migration reverted", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                reverted.append(migration.version)
            }
            return reverted
        }
    }

    /// Every known migration with the time it was applied, if it was.
    public func list(on connection: Connection) async throws -> [AppliedMigration] {
        let appliedAt = try await currentVersion(on: connection) > 0 ? try await MigrationStore.versionAppliedAt(on: connection) : [:]
        return migrations.map { AppliedMigration(migration: $0, appliedAt: appliedAt[$0.version]) }
    }

    /// Succeeds only when the database is at exactly the version this build knows: `tovd migrate
    /// validate` and the daemon's start-up check (which exits 3 on a newer schema).
    public func validate(on connection: Connection) async throws {
        let current = try await currentVersion(on: connection)
        try refuseNewer(current)
        if current < latestVersion {
            throw DaemonError(.migration, "the database schema is at version \(current) but this tovd needs version \(latestVersion): run `tovd migrate up`")
        }
    }

    private func refuseNewer(_ current: Int) throws {
        if current > latestVersion {
            throw DaemonError(.schemaTooNew, "the database schema is at version \(current), newer than this tovd knows (\(latestVersion)): upgrade tovd, or run `tovd migrate down` with the newer binary")
        }
    }

    private func withLock<T>(_ connection: Connection, _ body: () async throws -> T) async throws -> T {
        try await connection.advisoryLock(Self.lockKey)
        do {
            let result = try await body()
            try await connection.advisoryUnlock(Self.lockKey)
            return result
        } catch {
            _ = try? await connection.advisoryUnlock(Self.lockKey)
            throw error
        }
    }
}
