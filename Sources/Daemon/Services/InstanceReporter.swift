import Foundation
import Logging
import PQ
import ServiceLifecycle

/// This process's heartbeat in tov.instances (what `tov.workers` and the "no daemon running" state
/// read), and the reverse direction: what the database says, copied into this instance's metrics
/// and its systemd STATUS=. Every instance reports the same model and selection figures, so any one
/// can be scraped; `tovd_leader` tells which instance leads.
public final class InstanceReporter: Service, @unchecked Sendable {
    let conninfo: String
    let instance: String
    let holder: String
    let workers: Int
    let leaderCapable: Bool
    let interval: Duration
    let settings: SettingsCache
    let metrics: DaemonMetrics
    let health: HealthState
    let notifier: SystemdNotifier
    let logger: Logger
    private let stopFlag = StopFlag()
    private let wakeup = WakeupSignal()
    private let lock = NSLock()
    private var lastError: String?
    private var lastStatusLine: String?

    init(conninfo: String, instance: String, holder: String, workers: Int, leaderCapable: Bool, interval: Duration = .seconds(2),
         settings: SettingsCache, metrics: DaemonMetrics, health: HealthState, notifier: SystemdNotifier, logger: Logger) {
        self.conninfo = conninfo
        self.instance = instance
        self.holder = holder
        self.workers = workers
        self.leaderCapable = leaderCapable
        self.interval = interval
        self.settings = settings
        self.metrics = metrics
        self.health = health
        self.notifier = notifier
        self.logger = logger
        health.onChange = { [weak self] in self?.publishStatus(activity: nil) }
    }

    /// Remembers the last error of any service of this instance for tov.workers.last_error.
    func recordError(_ message: String) {
        lock.withLock { lastError = String(message.prefix(500)) }
        wakeup.signal()
    }

    static let heartbeat = """
        INSERT INTO tov.instances (holder, instance, host, pid, workers, leader_capable, rows_scored, rows_per_second,
                                   last_error, last_error_at, settings_error)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $9::text IS NOT NULL THEN now() END, $10)
        ON CONFLICT (holder) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL, rows_scored = EXCLUDED.rows_scored,
            rows_per_second = EXCLUDED.rows_per_second,
            last_error = coalesce(EXCLUDED.last_error, tov.instances.last_error),
            last_error_at = coalesce(EXCLUDED.last_error_at, tov.instances.last_error_at),
            settings_error = EXCLUDED.settings_error
        """

    static let read = """
        SELECT (SELECT model_version FROM tov.model_versions WHERE status = 'complete'),
               s.selection_version, (SELECT count(*) FROM tov.selection_items),
               (SELECT extract(epoch FROM trained_at - created_at)::float8 FROM tov.model_versions
                WHERE trained_at IS NOT NULL ORDER BY model_version DESC LIMIT 1),
               a.activity, a.done, a.total, a.unit,
               (SELECT status::text FROM tov.model_versions WHERE status IN ('training', 'scoring'))
        FROM tov.selection_state s CROSS JOIN tov.leader_activity a
        """

    public func run() async throws {
        try await withGracefulShutdownHandler {
            var connection: Connection?
            var lastScored: (Int64, ContinuousClock.Instant)?
            // Instances gone for a day are forgotten, so tov.workers lists what an operator runs now.
            var lastCleanup: ContinuousClock.Instant?
            while !stopFlag.isSet && !Task.isCancelled {
                do {
                    if connection == nil || !connection!.isConnected {
                        connection = try await Connection.connectRetrying(conninfo, as: "reporter", logger: logger)
                    }
                    let scored = metrics.rowsScored.value
                    var rate: Double?
                    if let (before, at) = lastScored {
                        let seconds = (ContinuousClock.now - at).seconds
                        if seconds > 0 { rate = Double(scored - before) / seconds }
                    }
                    lastScored = (scored, .now)
                    let error = lock.withLock { () -> String? in defer { lastError = nil }; return lastError }
                    let settingsError = settings.settingsError
                    metrics.settingsError.set(to: settingsError == nil ? 0 : 1)
                    try await connection!.execute(Self.heartbeat, [
                        holder, instance, ProcessInfo.processInfo.hostName, Int32(getpid()), workers, leaderCapable,
                        scored, rate, error, settingsError,
                    ])
                    if let r = try await connection!.query(Self.read).first {
                        metrics.modelVersion.set(to: r.isNull(0) ? 0 : Double(try r.get(Int32.self, 0)))
                        metrics.selectionVersion.set(to: Double(try r.get(Int64.self, 1)))
                        metrics.selectionSize.set(to: Double(try r.get(Int64.self, 2)))
                        if !r.isNull(3) { metrics.refreshSeconds.set(to: try r.get(Double.self, 3)) }
                        let next = r.isNull(8) ? nil : try r.get(String.self, 8)
                        var activity = next == "scoring" ? "rescoring" : try r.get(String.self, 4)
                        if !r.isNull(5), !r.isNull(6), next != "scoring" {
                            activity += " \(try r.get(Int64.self, 5))/\(try r.get(Int64.self, 6)) \(r.isNull(7) ? "" : try r.get(String.self, 7))"
                        }
                        publishStatus(activity: activity)
                    }
                    if lastCleanup == nil || ContinuousClock.now - lastCleanup! > .seconds(3600) {
                        try await connection!.execute("DELETE FROM tov.instances WHERE heartbeat_at < now() - interval '1 day'")
                        lastCleanup = .now
                    }
                } catch let error as PQError where error.isPermanent {
                    // A rejected login or a bad conninfo: retrying cannot fix it. Stop the process
                    // and let systemd's restart policy retry (the connect logged the reason).
                    throw error
                } catch let error as PQError where error.isConnectionProblem {
                    connection?.close()
                    connection = nil
                } catch is CancellationError {
                    break
                } catch {
                    logger.warning("instance heartbeat failed", metadata: ["error": "\(error)"])
                }
                await wakeup.wait(timeout: interval)
            }
            if let connection, connection.isConnected {
                _ = try? await connection.execute("UPDATE tov.instances SET stopped_at = now(), heartbeat_at = now() WHERE holder = $1", [holder])
            }
            connection?.close()
        } onGracefulShutdown: {
            self.stopFlag.set()
            self.wakeup.signal()
        }
    }

    /// Sends STATUS= when what it says changed: at once on a database outage or recovery (health's
    /// onChange), and whenever the leader's activity moves; never merely on a timer.
    private func publishStatus(activity: String?) {
        let line: String = lock.withLock {
            if let activity { lastActivity = activity }
            let leading = metrics.isLeader.value == 1 ? "; leader: \(lastActivity ?? "starting")" : ""
            return health.isDatabaseUp ? "scoring\(leading)" : "database unreachable; reconnecting"
        }
        let changed = lock.withLock { () -> Bool in
            defer { lastStatusLine = line }
            return lastStatusLine != line
        }
        if changed { notifier.status(line) }
    }
    private var lastActivity: String?
}
