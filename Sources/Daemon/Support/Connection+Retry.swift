import Logging
import PQ

extension Connection {
    /// Connects with the default backoff, logging each failed attempt as `<who> cannot reach the
    /// database; retrying` so an outage shows in the journal once per attempt, not as a crash.
    static func connectRetrying(_ conninfo: String, as who: String, logger: Logger) async throws -> Connection {
        try await connect(conninfo, retry: .default, applicationName: "tovd", logger: logger) { attempt, error in
            logger.warning("\(who) cannot reach the database; retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
        }
    }
}
