import Foundation
import Logging
import PQ
import ServiceLifecycle
import Synchronization

/// This process's heartbeat in tov.instances (what `tov.workers` and the "no daemon running" state
/// read), and the reverse direction: what the database says, copied into this instance's metrics
/// and its systemd STATUS=. Every instance reports the same model and selection figures, so any one
/// can be scraped; `tovd_leader` tells which instance leads.
public final class InstanceReporter: Service, Sendable {
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
    let clock: DaemonClock
    /// Test signal: a heartbeat written (with the rate it reported).
    let events = ServiceEvents<Event>()
    private let stopFlag = StopFlag()
    private let wakeup = WakeupSignal()

    enum Event: Sendable, Equatable {
        case wrote(rowsPerSecond: Double?)
    }
    /// The last error of any service since the previous heartbeat, for tov.workers.last_error.
    private let lastError = Mutex<String?>(nil)
    /// What STATUS= says now, and the leader's last activity it was made from.
    private let statusLine = Mutex<(line: String?, activity: String?)>((nil, nil))

    init(conninfo: String, instance: String, holder: String, workers: Int, leaderCapable: Bool, interval: Duration = .seconds(2),
         settings: SettingsCache, metrics: DaemonMetrics, health: HealthState, notifier: SystemdNotifier, clock: DaemonClock, logger: Logger) {
        self.clock = clock
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
        lastError.withLock { $0 = String(message.prefix(500)) }
        wakeup.signal()
    }

    public func run() async throws {
        let loop = DatabaseLoop(conninfo: conninfo, name: "reporter", logger: logger, stopping: stopFlag, clock: clock)
        var lastScored: (Int64, DaemonClock.Instant)?
        // Instances gone for a day are forgotten, so tov.workers lists what an operator runs now.
        var lastCleanup: DaemonClock.Instant?
        try await withGracefulShutdownHandler {
            try await loop.run(onError: { error in
                logger.warning("instance heartbeat failed", metadata: ["error": "\(error)"])
            }, onStop: { connection in
                _ = try? await connection?.execute(InstanceStore.instanceStop, [holder])
            }) {
                let connection = try await loop.connection()
                let scored = metrics.rowsScored.value
                let now = clock.now
                var rate: Double?
                if let (before, at) = lastScored {
                    let seconds = (now - at).seconds
                    if seconds > 0 { rate = Double(scored - before) / seconds }
                }
                lastScored = (scored, now)
                let error = lastError.withLock { error -> String? in defer { error = nil }; return error }
                let settingsError = settings.settingsError
                metrics.settingsError.set(to: settingsError == nil ? 0 : 1)
                try await InstanceStore.heartbeat(.init(
                    holder: holder, instance: instance, host: ProcessInfo.processInfo.hostName, pid: Int32(getpid()), workers: workers,
                    leaderCapable: leaderCapable, rowsScored: scored, rowsPerSecond: rate, lastError: error, settingsError: settingsError),
                    on: connection)
                if let figures = try await InstanceStore.figures(on: connection) {
                    metrics.modelVersion.set(to: Double(figures.modelVersion ?? 0))
                    metrics.selectionVersion.set(to: Double(figures.selectionVersion))
                    metrics.selectionSize.set(to: Double(figures.selectionSize))
                    if let seconds = figures.lastRefreshSeconds { metrics.refreshSeconds.set(to: seconds) }
                    publishStatus(activity: figures.activityLine)
                }
                metrics.setTargets(try await StatusQueries.targetStatusGetMany(on: connection))
                if lastCleanup == nil || now - lastCleanup! > .seconds(3600) {
                    try await connection.execute(InstanceStore.instanceForgetStaleMany)
                    lastCleanup = now
                }
                events.emit(.wrote(rowsPerSecond: rate))
                await wakeup.wait(timeout: interval, on: clock)
            }
        } onGracefulShutdown: {
            self.stopFlag.set()
            self.wakeup.signal()
        }
    }

    /// Sends STATUS= when what it says changed: at once on a database outage or recovery (health's
    /// onChange), and whenever the leader's activity moves; never merely on a timer.
    private func publishStatus(activity: String?) {
        let leader = metrics.isLeader.value == 1
        let up = health.isDatabaseUp
        let changed: String? = statusLine.withLock { status in
            if let activity { status.activity = activity }
            let leading = leader ? "; leader: \(status.activity ?? "starting")" : ""
            let line = up ? "scoring\(leading)" : "database unreachable; reconnecting"
            defer { status.line = line }
            return status.line != line ? line : nil
        }
        if let changed { notifier.status(changed) }
    }
}
