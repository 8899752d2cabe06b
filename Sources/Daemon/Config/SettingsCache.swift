import Foundation
import PQ

/// `tov.settings`, re-read at most every `maxAge` or right after a `tov_settings` NOTIFY, so a
/// change takes effect without a restart and without a query per batch.
public final class SettingsCache: @unchecked Sendable {
    private let lock = NSLock()
    private var cached: Settings?
    private var loadedAt: ContinuousClock.Instant?
    private let maxAge: Duration

    public init(maxAge: Duration = .seconds(5)) {
        self.maxAge = maxAge
    }

    /// Forgets the cached value (called on NOTIFY tov_settings).
    public func invalidate() { lock.withLock { cached = nil } }

    public func current(on connection: Connection) async throws -> Settings {
        if let fresh = lock.withLock({ () -> Settings? in
            guard let cached, let loadedAt, ContinuousClock.now - loadedAt < maxAge else { return nil }
            return cached
        }) {
            return fresh
        }
        let settings = try await Self.load(on: connection)
        lock.withLock {
            cached = settings
            loadedAt = .now
        }
        return settings
    }

    public static func load(on connection: Connection) async throws -> Settings {
        let rows = try await connection.query(Queries.settingsGetAll)
        return try Settings(rows: rows.map { (try $0.get(String.self, 0), try $0.get(String.self, 1)) })
    }
}
