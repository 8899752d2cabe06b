import Logging
import PQ
import ServiceLifecycle

extension Connection {
    /// Connects with the default backoff, logging each failed attempt as `<who> cannot reach the
    /// database; retrying` so an outage shows in the journal once per attempt, not as a crash.
    ///
    /// Ends with `CancellationError` as soon as the service group shuts down gracefully (SIGTERM during
    /// an outage must not wait for the database), and with the error itself when retrying cannot fix it
    /// (wrong password, unknown database or role, a connection string libpq cannot parse): those need a
    /// person, and under systemd the unit's restart policy does the waiting.
    /// The backoff waits on `clock` (the service's).
    static func connectRetrying(_ conninfo: String, as who: String, logger: Logger, clock: any Clock<Duration>,
                                retry: RetryPolicy = .default) async throws -> Connection {
        do {
            return try await connect(conninfo, retry: retry, applicationName: "tovd", logger: logger, sleep: { delay in
                if Task.isShuttingDownGracefully { throw CancellationError() }
                // Cancelled (it throws) the moment a graceful shutdown starts, not when the delay ends.
                try await cancelWhenGracefulShutdown { try await clock.sleep(for: delay) }
                if Task.isShuttingDownGracefully { throw CancellationError() }
            }) { attempt, error in
                logger.warning("\(who) cannot reach the database; retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
            }
        } catch let error as PQError where error.isPermanent {
            logger.critical("\(who) cannot connect to the database, and retrying will not help", metadata: ["error": "\(error)"])
            throw error
        }
    }
}
