import Logging
import PQ
import ServiceLifecycle

/// Holds one LISTEN connection and turns notifications into wake-ups: `tov_candidates` wakes the
/// workers, `tov_validation`, `tov_settings` and `tov_scores` (a batch committed scores) wake the
/// leader. Payloads are hints only (a row
/// count, a version) and are never trusted: a malformed one just causes a wake-up. When the
/// connection drops it reconnects with backoff; meanwhile the workers' polling keeps rows moving.
public final class NotificationWatcher: Service, @unchecked Sendable {
    public static let channels = ["tov_candidates", "tov_validation", "tov_settings", "tov_scores"]

    let conninfo: String
    let workers: WakeupSignal
    let leader: WakeupSignal
    let settings: SettingsCache
    let health: HealthState
    let logger: Logger
    let onListening: @Sendable () -> Void

    public init(conninfo: String, workers: WakeupSignal, leader: WakeupSignal, settings: SettingsCache,
                health: HealthState, logger: Logger, onListening: @escaping @Sendable () -> Void = {}) {
        self.conninfo = conninfo
        self.workers = workers
        self.leader = leader
        self.settings = settings
        self.health = health
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        while !Task.isStopping {
            var connection: Connection?
            do {
                connection = try await Connection.connectRetrying(conninfo, as: "listener", logger: logger)
                for channel in Self.channels { try await connection!.listen(channel) }
                health.setListening(true)
                onListening()
                // Rows inserted while we were not listening: wake everyone once.
                workers.signal()
                leader.signal()
                for try await note in connection!.notifications().cancelOnGracefulShutdown() {
                    switch note.channel {
                    case "tov_candidates": workers.signal()
                    case "tov_settings":
                        settings.invalidate()
                        leader.signal()
                    default: leader.signal()
                    }
                }
            } catch is CancellationError {
                break
            } catch {
                logger.warning("listener connection lost; polling continues while it reconnects", metadata: ["error": "\(error)"])
            }
            health.setListening(false)
            connection?.close()
            if Task.isStopping { break }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
