import Foundation
import Logging
import PQ
import ServiceLifecycle
import Surrogate
import Synchronization

/// `tovd run`: checks the database and schema, then runs the watcher, the scoring workers, the
/// leader, the metrics endpoint and the systemd watchdog as one ServiceLifecycle group until SIGTERM.
public struct TovDaemon: Sendable {
    /// Every default of `tovd run`, named once: the configuration, the services and `--help` read them here.
    public enum Defaults {
        public static let workers = 1
        public static let batchSize = 64
        public static let leaseSeconds = 120.0
        public static let pollSeconds = 2.0
        public static let leaderLeaseSeconds = 10.0
        public static let metricsHost = "127.0.0.1"
        public static let metricsPort = 9464
    }

    public struct Configuration: Sendable {
        public var conninfo: String
        public var instance: String
        public var workers = Defaults.workers
        public var batchSize = Defaults.batchSize
        public var leaseSeconds = Defaults.leaseSeconds
        public var pollInterval: Duration = .milliseconds(Int(Defaults.pollSeconds * 1000))
        public var listen = true
        public var leader = true
        /// How long the leader lease lasts without a renewal: the bound on a take-over after the
        /// leader's host dies (plus one poll of the standby, 1 s).
        public var leaderLeaseSeconds = Defaults.leaderLeaseSeconds
        public var metricsHost = Defaults.metricsHost
        /// The scoring pass's linear layers (``PrecisionChoice``). A per-host choice: hosts of one
        /// database may differ (docs/performance.md).
        public var scoringPrecision = PrecisionChoice.auto
        /// θ0's bootstrap and the trajectories' linear layers on this host: fp32 unless asked
        /// (``TrainingPrecision``; bf16 leaves PyTorch's golden tolerance, docs/performance.md).
        public var trainingPrecision = TrainingPrecision.fp32
        /// nil disables the endpoint; 0 picks a free port (printed in the log).
        public var metricsPort: Int? = Defaults.metricsPort
        /// Test-only fault hooks (`tovd run` reads them from `TOVD_FAULT_*`); none in production.
        public var faults = Faults.none

        public init(conninfo: String, instance: String) {
            self.conninfo = conninfo
            self.instance = instance
        }
    }

    let configuration: Configuration
    let logger: Logger

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let notifier = SystemdNotifier()
        let metrics = DaemonMetrics()
        let health = HealthState(metrics: metrics)
        notifier.status("connecting to the database")

        // The one clock every service reads and waits on.
        let clock = DaemonClock.continuous
        // Refuse to start against a schema this build does not know, with a message that says why.
        let probe = try await Connection.connectRetrying(configuration.conninfo, as: "tovd", logger: logger, clock: clock)
        do {
            try await Migrator(logger: logger).validate(on: probe)
        } catch {
            probe.close()
            throw error
        }
        probe.close()

        let workerWakeup = WakeupSignal()
        let keeperWakeup = WakeupSignal()
        let trainerWakeup = WakeupSignal()
        let settings = SettingsCache(clock: clock)
        let leadership = Leadership(instance: configuration.instance, clock: clock)
        let reporter = InstanceReporter(
            conninfo: configuration.conninfo, instance: configuration.instance, holder: leadership.holder,
            workers: configuration.workers, leaderCapable: configuration.leader, settings: settings,
            metrics: metrics, health: health, notifier: notifier, clock: clock, logger: logger)

        var metricsServer: MetricsServer?
        if let port = configuration.metricsPort {
            let server = try MetricsServer(host: configuration.metricsHost, port: port) { path in
                switch path {
                case "/metrics": return (200, "text/plain; version=0.0.4", metrics.render())
                case "/healthz":
                    return health.isDatabaseUp ? (200, "text/plain", Array("ok\n".utf8)) : (503, "text/plain", Array("database unreachable\n".utf8))
                default: return (404, "text/plain", Array("try /metrics or /healthz\n".utf8))
                }
            }
            server.start()
            metricsServer = server
            logger.info("metrics endpoint listening", metadata: ["address": "\(configuration.metricsHost):\(server.port)"])
        }
        defer { metricsServer?.stop() }

        var services: [any Service] = []
        let ready: @Sendable () -> Void = {
            notifier.ready(status: "scoring")
            logger.info("tovd is ready", metadata: ["instance": "\(configuration.instance)", "workers": "\(configuration.workers)"])
        }
        if configuration.listen {
            let readyOnce = OnceFlag()
            services.append(NotificationWatcher(
                conninfo: configuration.conninfo, workers: workerWakeup, keeper: keeperWakeup, trainer: trainerWakeup, settings: settings,
                health: health, clock: clock, logger: logger, onListening: { if readyOnce.claim() { ready() } }))
        }
        let (precision, precisionWarning) = configuration.scoringPrecision.resolve(bf16Available: ScoringPrecision.isAvailable(.bf16))
        let (trainingPrecision, trainingWarning) = configuration.trainingPrecision.resolve(bf16Available: ScoringPrecision.isAvailable(.bf16))
        for warning in [precisionWarning, trainingWarning].compactMap({ $0 }) {
            logger.warning("\(warning)", metadata: ["cpu": "\(CPUFeatures.modelName)"])
        }
        logger.notice("scoring in \(precision.rawValue) (--scoring-precision \(configuration.scoringPrecision.rawValue)), training in \(trainingPrecision.rawValue)")
        for index in 0..<configuration.workers {
            var worker = ScoringWorker.Configuration(conninfo: configuration.conninfo, name: "\(configuration.instance)/\(index)")
            worker.batchSize = configuration.batchSize
            worker.leaseSeconds = configuration.leaseSeconds
            worker.pollInterval = configuration.pollInterval
            worker.scoringPrecision = precision
            worker.faultScoreDelay = configuration.faults.scoreDelay
            services.append(ScoringWorker(configuration: worker, wakeup: workerWakeup,
                                          models: ModelCache(logger: logger, clock: clock, onError: { reporter.recordError($0) }), settings: settings,
                                          metrics: metrics, health: health, clock: clock, logger: logger, onError: { reporter.recordError($0) }))
        }
        services.append(reporter)
        if configuration.leader {
            // The lease on its own connection, and each leader job in its own service: training for
            // an hour never holds up the selection, the sweeper or the lease renewal.
            var lease = LeaderLease.Configuration(conninfo: configuration.conninfo, instance: configuration.instance)
            lease.leaseDuration = .milliseconds(Int(configuration.leaderLeaseSeconds * 1000))
            lease.renewInterval = lease.leaseDuration / 5
            services.append(LeaderLease(configuration: lease, leadership: leadership, wakeup: trainerWakeup, metrics: metrics, logger: logger))
            // One flag for every leader job: the first to hear of shutdown stops them all, so the
            // trainer never mistakes a stopping daemon for a lost lease and starts new work.
            let stopping = StopFlag()
            let jobs: [(any LeaderJob, WakeupSignal)] = [
                (Trainer(instance: configuration.instance, settings: settings, workers: workerWakeup,
                         metrics: metrics, stopping: stopping, clock: clock, faults: configuration.faults, scoringPrecision: precision,
                         trainingPrecision: trainingPrecision, logger: logger), trainerWakeup),
                (SelectionKeeper(settings: settings, workers: workerWakeup, metrics: metrics, minimumGap: .milliseconds(200),
                                 clock: clock, logger: logger), keeperWakeup),
                (Sweeper(interval: .seconds(30), workers: workerWakeup, logger: logger), WakeupSignal()),
            ]
            for (job, wakeup) in jobs {
                services.append(job.service(conninfo: configuration.conninfo, leadership: leadership, wakeup: wakeup,
                                            leaseDuration: lease.leaseDuration, reporter: reporter, logger: logger,
                                            stopping: stopping))
            }
        }
        if let interval = notifier.watchdogInterval {
            services.append(WatchdogService(notifier: notifier, interval: interval, clock: clock))
        }
        if !configuration.listen { ready() }

        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger))
        do {
            try await group.run()
        } catch {
            notifier.stopping()
            await drainOffPoolWork()
            throw error
        }
        notifier.stopping()
        await drainOffPoolWork()
        logger.info("tovd stopped")
    }

    /// Training or scoring that a stop abandoned still runs on its own thread; the process waits for
    /// it (bounded: systemd's stop timeout is longer) instead of exiting under it.
    private func drainOffPoolWork() async {
        if await !OffPool.drain(within: .seconds(20)) {
            logger.warning("stopping while training or scoring still runs on its thread; exiting anyway after 20 s")
        }
    }
}

/// Pings the systemd watchdog at half its period while the process is alive. STATUS= is not sent
/// here: InstanceReporter sends it when its text changes (an outage shows at once, not on a tick).
struct WatchdogService: Service {
    let notifier: SystemdNotifier
    let interval: Duration
    let clock: DaemonClock

    func run() async throws {
        for await _ in AsyncStream.ticks(every: interval / 2, on: clock).cancelOnGracefulShutdown() {
            notifier.watchdog()
        }
    }
}

extension AsyncStream where Element == Void {
    /// A tick every `period` until the consumer stops iterating.
    static func ticks(every period: Duration, on clock: DaemonClock) -> AsyncStream<Void> {
        AsyncStream { continuation in
            let task = Task {
                while !Task.isCancelled {
                    continuation.yield()
                    try? await clock.sleep(for: period)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// True for the first caller only.
final class OnceFlag: Sendable {
    private let done = Mutex(false)
    func claim() -> Bool { done.withLock { done in defer { done = true }; return !done } }
}
