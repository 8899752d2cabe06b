import Foundation
import Logging
import PQ
import ServiceLifecycle
import Synchronization

/// What this process knows about its leadership: the lease epoch it holds, if any, and until when it
/// may act on it without hearing from the database. Shared by the lease service, which changes it,
/// and the leader jobs, which wait for it and check it before each step.
public final class Leadership: Sendable {
    public struct Term: Sendable, Equatable {
        public var epoch: Int64
        /// Local monotonic deadline: the lease's duration after the last renewal was *sent*, so it
        /// never outlives the database's own lease_until even when the database cannot be reached.
        var validUntil: DaemonClock.Instant
    }

    private let term = Mutex<Term?>(nil)
    /// The clock `validUntil` is read on: the lease service's.
    let clock: DaemonClock
    /// Signalled on every change, so leader jobs start the moment leadership is gained.
    let changed = WakeupSignal()
    /// Processes sharing one instance name still get distinct lease holders.
    public let holder: String

    public init(instance: String, clock: DaemonClock) {
        holder = "\(instance)#\(UUID().uuidString.prefix(8).lowercased())"
        self.clock = clock
    }

    /// The epoch this process may act on right now, or nil.
    public var currentEpoch: Int64? {
        term.withLock { term in
            guard let term, clock.now < term.validUntil else { return nil }
            return term.epoch
        }
    }

    /// Whether `epoch` is still ours; a training run polls this to stop early after a take-over.
    public func holds(_ epoch: Int64) -> Bool { currentEpoch == epoch }

    func set(_ new: Term?) {
        let differs: Bool = term.withLock { term in
            defer { term = new }
            return term?.epoch != new?.epoch
        }
        if differs { changed.signal() }
    }
}

/// Holds the leader lease: tries to take it every `pollInterval` while another instance holds it,
/// renews it every `renewInterval` while this one does, and on take-over fails the work the previous
/// leader left half-done. Runs on its own connection so neither training nor a long selection
/// update can delay a renewal (DESIGN.md: one job per service).
///
/// Take-over bound: a leader that stops renewing (crashed, stopped, cut off) loses the lease at most
/// `leaseDuration` after its last renewal; another instance takes it within `pollInterval` after
/// that. A leader cut off mid-transaction holds the fence lock until Postgres ends its session:
/// leader connections set `idle_in_transaction_session_timeout` to the lease duration for that.
public final class LeaderLease: Service, Sendable {
    public struct Configuration: Sendable {
        public var conninfo: String
        public var instance: String
        public var leaseDuration: Duration = .milliseconds(Int(TovDaemon.Defaults.leaderLeaseSeconds * 1000))
        public var renewInterval: Duration = .seconds(2)
        public var pollInterval: Duration = .seconds(1)
        public init(conninfo: String, instance: String) {
            self.conninfo = conninfo
            self.instance = instance
        }
    }

    let configuration: Configuration
    let leadership: Leadership
    let wakeup: WakeupSignal
    let metrics: DaemonMetrics
    let logger: Logger
    /// Sends renewals and polls on the leadership's clock, so a term and its renewals share one time.
    var clock: DaemonClock { leadership.clock }
    /// Test signal: the lease taken, renewed or lost, as it happens.
    public let events = ServiceEvents<Event>()
    private let stopFlag = StopFlag()

    public enum Event: Sendable, Equatable {
        case acquired(epoch: Int64)
        case renewed(epoch: Int64)
        case lost(epoch: Int64)
    }

    public init(configuration: Configuration, leadership: Leadership, wakeup: WakeupSignal, metrics: DaemonMetrics, logger: Logger) {
        self.configuration = configuration
        self.leadership = leadership
        self.wakeup = wakeup
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        var machine = LeaseMachine(leaseDuration: configuration.leaseDuration, renewInterval: configuration.renewInterval,
                                   pollInterval: configuration.pollInterval)
        let loop = DatabaseLoop(conninfo: configuration.conninfo, name: "leader lease", logger: logger, stopping: stopFlag, clock: clock)
        try await withGracefulShutdownHandler {
            try await loop.run(onConnectionLost: { _ in
                // Keep acting until the local deadline passes: the lease may still be ours.
                apply(machine.connectionLost(stillValid: leadership.currentEpoch != nil))
            }, onError: { error in
                logger.error("leader lease query failed; retrying", metadata: ["error": "\(error)"])
            }, onStop: { connection in
                leadership.set(nil)
                metrics.isLeader.set(to: 0)
                // Hand the lease over at once instead of making the next leader wait for it to expire.
                if let epoch = machine.epoch, let connection {
                    try? await LeaderStore.leaseRelease(epoch: epoch, holder: leadership.holder, on: connection)
                }
            }) {
                let connection = try await loop.connection()
                let sent = clock.now
                let seconds = configuration.leaseDuration.seconds
                let action: LeaseMachine.Action
                switch machine.nextQuery {
                case .acquire:
                    let taken = try await LeaderStore.leaseAcquire(holder: leadership.holder, instance: configuration.instance,
                                                                   seconds: seconds, on: connection)
                    // Before acting as leader: if this fails, the next acquire (ours still) retries it.
                    if let taken { try await takeOver(epoch: taken, on: connection) }
                    action = machine.acquired(taken, sentAt: sent)
                case .renew(let epoch):
                    action = machine.renewed(try await LeaderStore.leaseRenew(
                        epoch: epoch, holder: leadership.holder, seconds: seconds, on: connection), sentAt: sent)
                }
                apply(action)
                try? await clock.sleep(for: machine.pause)
            }
        } onGracefulShutdown: {
            self.stopFlag.set()
        }
    }

    private func apply(_ action: LeaseMachine.Action) {
        switch action {
        case .none:
            break
        case .becameLeader(let epoch, let validUntil):
            leadership.set(.init(epoch: epoch, validUntil: validUntil))
            metrics.isLeader.set(to: 1)
            logger.notice("this instance is now the leader", metadata: ["instance": "\(configuration.instance)", "epoch": "\(epoch)"])
            wakeup.signal()
            events.emit(.acquired(epoch: epoch))
        case .renewed(let epoch, let validUntil):
            leadership.set(.init(epoch: epoch, validUntil: validUntil))
            events.emit(.renewed(epoch: epoch))
        case .lost(let epoch):
            logger.warning("leader lease lost: another instance took over or it expired before renewal", metadata: ["epoch": "\(epoch)"])
            leadership.set(nil)
            metrics.isLeader.set(to: 0)
            events.emit(.lost(epoch: epoch))
        }
    }

    /// A new leader first fails whatever the previous one left in `training`: it cannot be resumed
    /// from a half-written trajectory, and redoing it is cheap compared with guessing.
    func takeOver(epoch: Int64, on connection: Connection) async throws {
        let failed = try await LeaderStore.leaderTakeOver(epoch: epoch, on: connection)
        if failed.bases + failed.versions > 0 {
            logger.notice("previous leader died while training; its work will be redone",
                          metadata: ["base_models": "\(failed.bases)", "model_versions": "\(failed.versions)"])
        }
    }
}
