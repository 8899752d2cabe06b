import Foundation
import Logging
import PQ
import Synchronization

/// One row of `tov.settings` as the daemon reads it: the value as jsonb prints it, and whether the
/// database's own rule, `tov.setting_is_valid`, accepts it.
public struct SettingRow: Equatable, Sendable {
    public var key: String
    public var json: String
    public var valid: Bool

    public init(key: String, json: String, valid: Bool) {
        self.key = key
        self.json = json
        self.valid = valid
    }
}

/// `tov.settings`, re-read at most every `maxAge` or right after a `tov_settings` NOTIFY, so a
/// change takes effect without a restart and without a query per batch.
///
/// A stored value the daemon cannot use (the database's rule refuses it, which happens only when
/// the CHECK was bypassed or the schema is not this build's, or this build cannot parse it) never
/// stops the daemon: that key keeps its last good value (its default if it never had one), the
/// problem is logged once, and ``problems`` / ``settingsError`` say what to fix until it is fixed.
public final class SettingsCache: Sendable {
    private struct State {
        var cached: Settings?
        var loadedAt: DaemonClock.Instant?
        var lastGood: [String: String] = [:]
        var reading = Reading()
        var generationCount = 0
        /// A setting the trainer found it cannot use (see ``setTrainingProblem(_:)``).
        var trainingProblem: String?
    }
    private let state = Mutex(State())
    private let maxAge: Duration
    /// What `maxAge` is counted on (the daemon's clock; the continuous clock for a one-off reader).
    private let clock: DaemonClock
    private let logger: Logger

    public init(maxAge: Duration = .seconds(5), clock: DaemonClock = .continuous, logger: Logger = Logger(label: "tovd.settings")) {
        self.maxAge = maxAge
        self.clock = clock
        self.logger = logger
    }

    /// Forgets the cached value (called on NOTIFY tov_settings).
    public func invalidate() { state.withLock { $0.cached = nil } }

    /// The settings in force, read from the database when the cached copy is older than `maxAge`.
    /// - Throws: only what the query throws (a lost connection); never for a bad value.
    public func current(on connection: Connection) async throws -> Settings {
        let now = clock.now
        if let fresh = state.withLock({ state -> Settings? in
            guard let cached = state.cached, let loadedAt = state.loadedAt, now - loadedAt < maxAge else { return nil }
            return cached
        }) {
            return fresh
        }
        return try await load(on: connection)
    }

    /// Reads the settings now, whatever the cache holds (the leader, once per tick).
    /// - Throws: only what the query throws; never for a bad value.
    public func load(on connection: Connection) async throws -> Settings {
        let rows = try await Self.rows(on: connection)
        let targets = try await TargetStore.targetRows(on: connection)
        let now = clock.now
        let (settings, appeared, cleared) = state.withLock { state -> (Settings, [String], [String]) in
            let next = Self.read(rows, targets: targets, lastGood: state.lastGood)
            let before = Set(state.reading.problems)
            let appeared = next.problems.filter { !before.contains($0) }
            let cleared = state.reading.problems.filter { !Set(next.problems).contains($0) }
            if next.settings != state.reading.settings || next.problems != state.reading.problems { state.generationCount += 1 }
            state.lastGood = next.lastGood
            state.reading = next
            state.cached = next.settings
            state.loadedAt = now
            return (next.settings, appeared, cleared)
        }
        // Once per problem, not once per batch: the same rows give the same messages.
        for problem in appeared { logger.error("\(problem)") }
        for problem in cleared { logger.notice("settings problem resolved", metadata: ["was": "\(problem)"]) }
        return settings
    }

    /// One line per stored value that cannot be used, naming the key, the value and what to do.
    public var problems: [String] { state.withLock { $0.reading.problems + ($0.trainingProblem.map { [$0] } ?? []) } }

    /// A value the database accepts but the trainer cannot use as it is (a surrogate too large for
    /// this host, a trajectory that diverged under these settings); nil when it can train again. It
    /// joins ``problems``, so it reaches tov.status.settings_error and tovd_settings_error.
    public func setTrainingProblem(_ problem: String?) {
        state.withLock { state in
            guard state.trainingProblem != problem else { return }
            state.trainingProblem = problem
            state.generationCount += 1
        }
    }

    /// All ``problems`` in one line (for `tov.status`), nil when every value is in force.
    public var settingsError: String? {
        let problems = self.problems
        return problems.isEmpty ? nil : problems.joined(separator: " | ")
    }

    /// Counts the loads that changed the settings in force or the problems: a reader that
    /// remembers it can tell when to write ``settingsError`` to `tov.status` or a metric again.
    public var generation: Int { state.withLock { $0.generationCount } }

    /// A one-off read (`tovd explain`, tests) without a cache: values that cannot be used are at
    /// their defaults. A service that reads repeatedly uses an instance, which keeps the last
    /// good value instead and logs each problem once.
    /// - Throws: only what the query throws; never for a bad value.
    public static func load(on connection: Connection) async throws -> Settings {
        read(try await rows(on: connection), targets: try await TargetStore.targetRows(on: connection), lastGood: [:]).settings
    }

    static func rows(on connection: Connection) async throws -> [SettingRow] {
        try await connection.query(Queries.settingsGetAll).map {
            SettingRow(key: try $0.get(String.self, "key"), json: try $0.get(String.self, "value"), valid: try $0.get(Bool.self, "valid"))
        }
    }

    // MARK: - Reading rows (pure)

    /// The result of reading the rows: the settings to use and why some stored values are not used.
    public struct Reading: Equatable, Sendable {
        public var settings = Settings()
        /// Per known key, the text of the value in force when it came from the table (missing:
        /// the default is in force).
        public var lastGood: [String: String] = [:]
        public var problems: [String] = []
    }

    /// Applies each known key's stored value if the database accepts it and it parses; otherwise
    /// the key keeps `lastGood[key]` (or its default) and the reading gets a problem line. Keys
    /// this build does not know are ignored; keys missing from the rows are at their defaults.
    /// Each target gets the resulting settings with its own values applied (``applying(_:to:)``).
    public static func read(_ rows: [SettingRow], targets: [TargetRow] = [], lastGood: [String: String]) -> Reading {
        var reading = readGlobal(rows, lastGood: lastGood)
        let global = reading.settings
        reading.settings.targets = targets.map { target in
            let (settings, problems) = applying(target, to: global)
            reading.problems += problems
            return TargetSettings(id: target.id, name: target.name, enabled: target.enabled, settings: settings)
        }
        return reading
    }

    /// `global` with the target's own values applied. A key a target may not set, or a value that
    /// cannot be used (the table's CHECK makes both rare), is left at the global value and reported.
    static func applying(_ target: TargetRow, to global: Settings) -> (Settings, [String]) {
        var settings = global
        var problems: [String] = []
        for (key, json) in target.settings {
            let failure: String
            if !Settings.targetKeys.contains(key) {
                failure = "a target may set only \(Settings.targetKeys.sorted().joined(separator: ", "))"
            } else {
                do {
                    try settings.set(key, json: json)
                    continue
                } catch {
                    failure = "\(error)"
                }
            }
            problems.append("tov.targets: \(target.name): \(key) = \(Settings.excerpt(json)) cannot be used: \(failure); the target uses the "
                + "global value until it is fixed (UPDATE tov.targets SET settings = settings - '\(key)' WHERE name = '\(target.name)')")
        }
        return (settings, problems)
    }

    private static func readGlobal(_ rows: [SettingRow], lastGood: [String: String]) -> Reading {
        var reading = Reading()
        for row in rows.sorted(by: { $0.key < $1.key }) where Settings.keys.contains(row.key) {
            var trial = reading.settings
            let failure: String
            if !row.valid {
                failure = "the database's rule tov.setting_is_valid refuses it (was the table's CHECK dropped, or is the schema not this tovd's?)"
            } else {
                do {
                    try trial.set(row.key, json: row.json)
                    reading.settings = trial
                    reading.lastGood[row.key] = row.json
                    continue
                } catch {
                    failure = "\(error)"
                }
            }
            // The previous good text parsed before, so it parses again.
            var kept = "its default"
            if let previous = lastGood[row.key], (try? reading.settings.set(row.key, json: previous)) != nil {
                reading.lastGood[row.key] = previous
                kept = "its last good value \(Settings.excerpt(previous))"
            }
            let what = failure.hasPrefix("tov.settings:") ? failure : "tov.settings: \(row.key) = \(Settings.excerpt(row.json)) cannot be used: \(failure)"
            reading.problems.append("\(what); tovd keeps \(kept) until it is fixed: set a value in the range docs/operations.md gives (UPDATE tov.settings SET value = '...' WHERE key = '\(row.key)'), or DELETE the row for the default")
        }
        return reading
    }
}
