import ArgumentParser
import Daemon
import Foundation
import Logging
import Surrogate

extension Tovd {
    struct Run: AsyncParsableCommand {
        private typealias D = TovDaemon.Defaults
        static let configuration = CommandConfiguration(
            abstract: "Run the daemon: ingest, score and keep tov.selected current until SIGTERM.",
            discussion: """
                Any number of instances may run against one database: rows are claimed with \
                FOR UPDATE SKIP LOCKED and a lease, so none is processed twice, and one instance at a \
                time (the leader, holding a lease it renews; a standby takes over when it lapses) trains \
                models and keeps the selection current.
                Under systemd (Type=notify) it reports READY=1 once the database, the schema and LISTEN \
                are up, and pings the watchdog. Metrics: http://127.0.0.1:9464/metrics.
                """)

        @OptionGroup var database: DatabaseOptions
        @Option(help: "Scoring workers in this process, each with its own connection [$TOVD_WORKERS, \(D.workers)].") var workers: Int?
        @Option(help: "Rows claimed per batch [$TOVD_BATCH_SIZE, \(D.batchSize)].") var batchSize: Int?
        @Option(help: "Seconds a claim is held before another worker may take the rows over [$TOVD_LEASE_SECONDS, \(Int(D.leaseSeconds))].") var leaseSeconds: Double?
        @Option(help: "Seconds between polls when no NOTIFY arrives [$TOVD_POLL_INTERVAL, \(Int(D.pollSeconds))].") var pollInterval: Double?
        @Option(help: ArgumentHelp("Seconds the leader lease lasts without renewal [$TOVD_LEADER_LEASE_SECONDS, \(Int(D.leaderLeaseSeconds))].",
            discussion: "A standby takes over at most this long (plus 1 s) after the leader stops renewing: crashed, stopped, or cut off.")) var leaderLeaseSeconds: Double?
        @Flag(help: "Do not LISTEN; rely on polling alone.") var noListen = false
        @Flag(help: "Never become the leader (scoring only).") var noLeader = false
        @Option(help: "Address of /metrics and /healthz [$TOVD_METRICS_HOST, \(D.metricsHost)].") var metricsHost: String?
        @Option(help: "Port of /metrics and /healthz; 0 picks a free one, --metrics-port=-1 disables [$TOVD_METRICS_PORT, \(D.metricsPort)].") var metricsPort: Int?
        @Option(help: ArgumentHelp("auto, fp32 or bf16: the scoring pass's arithmetic on this host [$TOVD_SCORING_PRECISION, auto].",
            discussion: "auto is bf16 where the CPU has AVX-512 BF16 and fp32 elsewhere. bf16 runs the linear layers in bf16 with fp32 sums, about 1.3–2× the rows/s; φ moves slightly but ranks the same (`tovd bench score` prints its rank agreement with fp32 and the selection overlap on real rows), and `tovd evaluate` scores the same way. fp32 pins the old arithmetic; bf16 on a CPU without it warns and scores in fp32. Training has its own --training-precision.")) var scoringPrecision: String?
        @Option(help: ArgumentHelp("fp32 or bf16: θ0's bootstrap and the trajectories' arithmetic on this host [$TOVD_TRAINING_PRECISION, fp32].",
            discussion: "bf16 runs the forward and input-gradient GEMMs of training in bf16 with fp32 sums (weights, weight gradients and the optimizer stay fp32): about 1.2–1.4× the training tokens/s where the CPU has AVX-512 BF16. Its losses leave PyTorch's golden tolerance, so it is opt-in; `tovd bench train --precision fp32,bf16 --pipeline-pool N` prints the speed and how far φ and the selection move on your rows. bf16 on a CPU without it warns and trains in fp32.")) var trainingPrecision: String?
        @Option(help: "Name of this instance in logs and tov.status [$TOVD_INSTANCE, host:pid].") var instance: String?
        @Option(help: "trace, debug, info, notice, warning or error [$TOVD_LOG_LEVEL, info].") var logLevel: String?

        /// Flag, else `TOVD_*` environment variable (systemd's EnvironmentFile), else the default.
        private func setting<T: LosslessStringConvertible>(_ flag: T?, _ variable: String, _ fallback: T) throws -> T {
            if let flag { return flag }
            guard let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty else { return fallback }
            guard let value = T(text) else { throw ValidationError("\(variable)=\(text) is not a valid value") }
            return value
        }

        func validate() throws {
            let workers = try setting(workers, "TOVD_WORKERS", D.workers)
            guard workers >= 1, workers <= 64 else { throw ValidationError("--workers must be between 1 and 64") }
            let batchSize = try setting(batchSize, "TOVD_BATCH_SIZE", D.batchSize)
            guard batchSize >= 1, batchSize <= 10_000 else { throw ValidationError("--batch-size must be between 1 and 10000") }
            guard try setting(leaseSeconds, "TOVD_LEASE_SECONDS", D.leaseSeconds) >= 1 else { throw ValidationError("--lease-seconds must be at least 1") }
            guard try setting(pollInterval, "TOVD_POLL_INTERVAL", D.pollSeconds) > 0 else { throw ValidationError("--poll-interval must be positive") }
            let lease = try setting(leaderLeaseSeconds, "TOVD_LEADER_LEASE_SECONDS", D.leaderLeaseSeconds)
            guard lease >= 1, lease <= 3600 else { throw ValidationError("--leader-lease-seconds must be between 1 and 3600") }
            guard PrecisionChoice(rawValue: try setting(scoringPrecision, "TOVD_SCORING_PRECISION", "auto")) != nil else {
                throw ValidationError("--scoring-precision must be auto, fp32 or bf16")
            }
            guard TrainingPrecision(rawValue: try setting(trainingPrecision, "TOVD_TRAINING_PRECISION", "fp32")) != nil else {
                throw ValidationError("--training-precision must be fp32 or bf16")
            }
            guard Logger.Level(rawValue: try setting(logLevel, "TOVD_LOG_LEVEL", "info")) != nil else {
                throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error")
            }
        }

        func run() async throws {
            let level = Logger.Level(rawValue: try setting(logLevel, "TOVD_LOG_LEVEL", "info")) ?? .info
            LoggingSystem.bootstrap { LineLogHandler(label: $0, level: level) }
            let logger = Logger(label: "tovd")
            let defaultName = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
            var config = TovDaemon.Configuration(conninfo: try database.resolve(), instance: try setting(instance, "TOVD_INSTANCE", defaultName))
            config.workers = try setting(workers, "TOVD_WORKERS", D.workers)
            config.batchSize = try setting(batchSize, "TOVD_BATCH_SIZE", D.batchSize)
            config.leaseSeconds = try setting(leaseSeconds, "TOVD_LEASE_SECONDS", D.leaseSeconds)
            config.pollInterval = .milliseconds(Int(try setting(pollInterval, "TOVD_POLL_INTERVAL", D.pollSeconds) * 1000))
            config.leaderLeaseSeconds = try setting(leaderLeaseSeconds, "TOVD_LEADER_LEASE_SECONDS", D.leaderLeaseSeconds)
            config.scoringPrecision = PrecisionChoice(rawValue: try setting(scoringPrecision, "TOVD_SCORING_PRECISION", "auto")) ?? .auto
            config.trainingPrecision = TrainingPrecision(rawValue: try setting(trainingPrecision, "TOVD_TRAINING_PRECISION", "fp32")) ?? .fp32
            config.listen = !noListen
            config.leader = !noLeader
            config.metricsHost = try setting(metricsHost, "TOVD_METRICS_HOST", D.metricsHost)
            let port = try setting(metricsPort, "TOVD_METRICS_PORT", D.metricsPort)
            config.metricsPort = port < 0 ? nil : port
            // Test-only hooks (tests that start a real tovd pass them here); unset in production.
            config.faults = Faults(environment: ProcessInfo.processInfo.environment)
            do {
                try await TovDaemon(configuration: config, logger: logger).run()
            } catch let error as DaemonError {
                let status = Tovd.exitStatus(for: error)
                if status == Tovd.schemaTooNewStatus {
                    logger.critical("tovd cannot run and exits with status 3, so systemd does not restart it (RestartPreventExitStatus=3): upgrade tovd, then start the unit again",
                                    metadata: ["error": "\(error)"])
                } else {
                    logger.critical("tovd cannot run", metadata: ["error": "\(error)"])
                }
                throw ExitCode(status)
            }
        }
    }

    /// Exit status 3: the schema is newer than this binary. The units' RestartPreventExitStatus=3
    /// relies on it (restarting cannot fix that, upgrading tovd can), so `tovd run` and
    /// `tovd migrate` both use it; every other error exits 1.
    static let schemaTooNewStatus: Int32 = 3

    static func exitStatus(for error: DaemonError) -> Int32 {
        error.code == .schemaTooNew ? schemaTooNewStatus : ExitCode.failure.rawValue
    }
}
