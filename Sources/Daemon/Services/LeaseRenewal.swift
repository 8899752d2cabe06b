import Foundation
import Logging
import PQ
import Synchronization

/// Keeps the leases of a claimed batch from running out while it is processed: every
/// `leaseSeconds`/3 it extends the leases whose attempt number still matches (still ours), on the
/// batch's own connection. Connection runs its statements one at a time in submission order, so a
/// renewal slots in between the batch's queries, and scoring runs off the connection, so renewals
/// go through while it scores. Paused around the completing transaction, which must not carry them.
final class LeaseRenewal: Sendable {
    let jobs: [ClaimedJob]
    let leaseSeconds: Double
    let connection: Connection
    let logger: Logger
    let clock: DaemonClock
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(jobs: [ClaimedJob], leaseSeconds: Double, connection: Connection, clock: DaemonClock, logger: Logger) {
        self.clock = clock
        self.jobs = jobs
        self.leaseSeconds = leaseSeconds
        self.connection = connection
        self.logger = logger
    }

    func start() {
        let params: [PQValue?] = [
            jobs.map(\.candidateID), jobs.map { Int32($0.modelVersion) }, jobs.map { Int32($0.attempts) }, leaseSeconds,
        ]
        let interval = Duration.milliseconds(Int(leaseSeconds * 1000 / 3))
        let (connection, logger, clock) = (self.connection, self.logger, self.clock)
        let renewal = Task {
            while true {
                do { try await clock.sleep(for: interval) } catch { return }
                do {
                    try await connection.execute(Queries.jobRenewMany, params)
                } catch {
                    // The batch's own next statement meets the same problem and handles it; the
                    // leases then run out as if the worker had crashed.
                    logger.warning("lease renewal failed", metadata: ["error": "\(error)"])
                    return
                }
            }
        }
        task.withLock { $0 = renewal }
    }

    /// Stops renewing and waits for a renewal in flight, so the connection is the caller's again.
    func stop() async {
        let running = task.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        running?.cancel()
        await running?.value
    }

    /// Runs `body` with renewals stopped, then renews again.
    func paused<T>(_ body: () async throws -> T) async throws -> T {
        await stop()
        defer { start() }
        return try await body()
    }
}
