import Logging
import PQ
import ServiceLifecycle

/// Holds one LISTEN connection and turns notifications into wake-ups: `tov_candidates` wakes the
/// workers, `tov_scores` (a batch committed scores) wakes the selection keeper, `tov_validation` and
/// `tov_settings` wake the keeper and the trainer. Payloads are hints only (a row
/// count, a version) and are never trusted: a malformed one just causes a wake-up. When the
/// connection drops it reconnects with backoff; meanwhile the workers' polling keeps rows moving.
public final class NotificationWatcher: Service, Sendable {
    public static let channels = ["tov_candidates", "tov_validation", "tov_settings", "tov_scores"]

    let conninfo: String
    let workers: WakeupSignal
    let keeper: WakeupSignal
    let trainer: WakeupSignal
    let settings: SettingsCache
    let health: HealthState
    let logger: Logger
    let onListening: @Sendable () -> Void
    /// What the pause after an error waits on.
    let clock: DaemonClock

    public init(conninfo: String, workers: WakeupSignal, keeper: WakeupSignal, trainer: WakeupSignal, settings: SettingsCache,
                health: HealthState, clock: DaemonClock, logger: Logger, onListening: @escaping @Sendable () -> Void = {}) {
        self.clock = clock
        self.conninfo = conninfo
        self.workers = workers
        self.keeper = keeper
        self.trainer = trainer
        self.settings = settings
        self.health = health
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let stopping = StopFlag()
        let loop = DatabaseLoop(conninfo: conninfo, name: "listener", logger: logger, stopping: stopping, clock: clock)
        try await withGracefulShutdownHandler {
            try await loop.run(onConnectionLost: { _ in
                health.setListening(false)
            }, onError: { error in
                health.setListening(false)
                logger.warning("listener connection lost; polling continues while it reconnects", metadata: ["error": "\(error)"])
            }) {
                let connection = try await loop.connection()
                for channel in Self.channels { try await connection.listen(channel) }
                health.setListening(true)
                onListening()
                // Rows inserted while we were not listening: wake everyone once.
                workers.signal()
                keeper.signal()
                trainer.signal()
                for try await note in connection.notifications().cancelOnGracefulShutdown() {
                    switch note.channel {
                    case "tov_candidates": workers.signal()
                    case "tov_scores": keeper.signal()
                    case "tov_settings":
                        settings.invalidate()
                        keeper.signal()
                        trainer.signal()
                    default:
                        keeper.signal()
                        trainer.signal()
                    }
                }
                // The stream ended without an error: the connection is gone; listen again on a new one.
                health.setListening(false)
                loop.disconnect()
            }
        } onGracefulShutdown: {
            stopping.set()
        }
    }
}
