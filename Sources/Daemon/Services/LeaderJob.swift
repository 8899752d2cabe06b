import Foundation
import Logging
import PQ
import ServiceLifecycle

/// The lease epoch a leader job acts under. Every write of a leader job goes through `transaction`,
/// which first takes the fence: a job whose instance lost the lease between two steps writes nothing.
public struct LeaderFence: Sendable {
    public let epoch: Int64
    let leadership: Leadership

    /// Whether the lease is still ours as far as this process knows (no database round trip).
    public var isHeld: Bool { leadership.holds(epoch) }

    public func transaction<T>(on connection: Connection, _ body: (Connection) async throws -> T) async throws -> T {
        try await connection.transaction { tx in
            try await tx.query(LeaderStore.leaderFence, [epoch])
            return try await body(tx)
        }
    }
}

/// One of the leader's jobs (trainer, selection keeper, sweeper): run only while this instance holds
/// the lease, each on its own connection and in its own task, so an hour of training never holds up
/// the selection or the sweeper.
protocol LeaderJob: AnyObject, Sendable {
    var name: String { get }
    /// Does one unit of work; returns how long to wait before the next unless woken.
    func step(fence: LeaderFence, on connection: Connection) async throws -> Duration
    /// Called when the job stops acting under a lease (lost, or shutdown), to drop per-term memory.
    func leadershipEnded()
}

extension LeaderJob {
    func leadershipEnded() {}

    /// This job as a service of the daemon's group.
    func service(conninfo: String, leadership: Leadership, wakeup: WakeupSignal, leaseDuration: Duration,
                 reporter: InstanceReporter?, logger: Logger, stopping: StopFlag) -> any Service {
        LeaderJobService(job: self, conninfo: conninfo, leadership: leadership, wakeup: wakeup, leaseDuration: leaseDuration,
                         reporter: reporter, logger: logger, stopping: stopping)
    }
}

/// Runs a `LeaderJob` as a service: waits for leadership, connects, steps, and handles the ways a
/// step can fail (lease lost, connection lost, anything else) without ever exiting early.
final class LeaderJobService<Job: LeaderJob>: Service, Sendable {
    let job: Job
    let conninfo: String
    let leadership: Leadership
    let wakeup: WakeupSignal
    let leaseDuration: Duration
    let reporter: InstanceReporter?
    let logger: Logger
    /// Waits on the leadership's clock, the one its terms are read on.
    var clock: DaemonClock { leadership.clock }
    /// This service was asked to stop (its loop ends).
    private let stopFlag = StopFlag()
    /// The daemon is stopping: shared by every leader job and set by whichever hears of shutdown
    /// first. From then on no job starts new work, and a training cancelled by it is not mistaken for
    /// a lost lease; each service still ends only when the service group asks it to (a service that
    /// returned early would fail the group's ordered shutdown).
    let daemonStopping: StopFlag

    init(job: Job, conninfo: String, leadership: Leadership, wakeup: WakeupSignal, leaseDuration: Duration,
         reporter: InstanceReporter?, logger: Logger, stopping: StopFlag) {
        self.daemonStopping = stopping
        self.job = job
        self.conninfo = conninfo
        self.leadership = leadership
        self.wakeup = wakeup
        self.leaseDuration = leaseDuration
        self.reporter = reporter
        self.logger = logger
    }

    func run() async throws {
        let loop = DatabaseLoop(conninfo: conninfo, name: job.name, logger: logger, stopping: stopFlag, clock: clock)
        // A leader frozen mid-transaction must not hold the fence lock (and so block the next
        // leader's take-over) for longer than a lease.
        let ms = Int(leaseDuration.seconds * 1000)
        loop.prepare = { try await $0.execute(LeaderStore.sessionIdleInTransactionTimeoutSet, ["\(ms)"]) }
        var actingEpoch: Int64?
        let endTerm = {
            actingEpoch = nil
            self.job.leadershipEnded()
        }
        try await withGracefulShutdownHandler {
            try await loop.run(onError: { error in
                logger.error("\(job.name) failed; retrying", metadata: ["error": "\(error)"])
                reporter?.recordError("\(job.name): \(error)")
            }, onCancelled: {
                // Training stopped because leadership ended: not a failure. (Stopped because the
                // daemon is stopping: the next iteration waits for this service's own stop.)
                if !daemonStopping.isSet { endTerm() }
            }) {
                if daemonStopping.isSet {
                    await wakeup.wait(timeout: .seconds(1), on: clock)
                    return
                }
                guard let epoch = leadership.currentEpoch else {
                    if actingEpoch != nil { endTerm() }
                    // Standby connections are closed: a non-leader holds one connection, the lease's.
                    loop.disconnect()
                    await leadership.changed.wait(timeout: .seconds(1), on: clock)
                    return
                }
                if actingEpoch != epoch {
                    if actingEpoch != nil { job.leadershipEnded() }
                    actingEpoch = epoch
                }
                do {
                    let next = try await job.step(fence: LeaderFence(epoch: epoch, leadership: leadership), on: try await loop.connection())
                    await wakeup.wait(timeout: next, on: clock)
                } catch let error as PQError where error.sqlState?.rawValue == "TV001" {
                    logger.notice("\(job.name) stopped: the leader lease moved to another instance", metadata: ["epoch": "\(epoch)"])
                    endTerm()
                    try? await clock.sleep(for: .milliseconds(200))
                }
            }
        } onGracefulShutdown: {
            self.daemonStopping.set()
            self.stopFlag.set()
            self.wakeup.signal()
            self.leadership.changed.signal()
        }
    }
}
