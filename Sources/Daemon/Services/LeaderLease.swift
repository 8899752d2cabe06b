import Foundation
import Logging
import PQ
import ServiceLifecycle

/// What this process knows about its leadership: the lease epoch it holds, if any, and until when it
/// may act on it without hearing from the database. Shared by the lease service, which changes it,
/// and the leader jobs, which wait for it and check it before each step.
public final class Leadership: @unchecked Sendable {
    public struct Term: Sendable, Equatable {
        public var epoch: Int64
        /// Local monotonic deadline: the lease's duration after the last renewal was *sent*, so it
        /// never outlives the database's own lease_until even when the database cannot be reached.
        var validUntil: ContinuousClock.Instant
    }

    private let lock = NSLock()
    private var term: Term?
    /// Signalled on every change, so leader jobs start the moment leadership is gained.
    let changed = WakeupSignal()
    /// Processes sharing one instance name still get distinct lease holders.
    public let holder: String

    public init(instance: String) {
        holder = "\(instance)#\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// The epoch this process may act on right now, or nil.
    public var currentEpoch: Int64? {
        lock.withLock {
            guard let term, ContinuousClock.now < term.validUntil else { return nil }
            return term.epoch
        }
    }

    /// Whether `epoch` is still ours; a training run polls this to stop early after a take-over.
    public func holds(_ epoch: Int64) -> Bool { currentEpoch == epoch }

    func set(_ new: Term?) {
        let differs: Bool = lock.withLock {
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
public final class LeaderLease: Service, @unchecked Sendable {
    public struct Configuration: Sendable {
        public var conninfo: String
        public var instance: String
        public var leaseDuration: Duration = .seconds(10)
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
    private let stopFlag = StopFlag()

    public init(configuration: Configuration, leadership: Leadership, wakeup: WakeupSignal, metrics: DaemonMetrics, logger: Logger) {
        self.configuration = configuration
        self.leadership = leadership
        self.wakeup = wakeup
        self.metrics = metrics
        self.logger = logger
    }

    static let acquire = """
        WITH free AS (
            SELECT singleton FROM tov.leader
            WHERE lease_until IS NULL OR lease_until < clock_timestamp() OR holder = $1
            FOR UPDATE
        )
        UPDATE tov.leader l
        SET epoch = l.epoch + 1, holder = $1, instance = $2, since = now(), heartbeat_at = now(),
            lease_until = clock_timestamp() + make_interval(secs => $3::float8)
        FROM free WHERE l.singleton = free.singleton
          AND (l.lease_until IS NULL OR l.lease_until < clock_timestamp() OR l.holder = $1)
        RETURNING l.epoch
        """

    static let renew = """
        UPDATE tov.leader SET heartbeat_at = now(), lease_until = clock_timestamp() + make_interval(secs => $3::float8)
        WHERE epoch = $1 AND holder = $2 AND lease_until > clock_timestamp()
        RETURNING epoch
        """

    static let release = "UPDATE tov.leader SET lease_until = NULL, holder = NULL WHERE epoch = $1 AND holder = $2"

    public func run() async throws {
        try await withGracefulShutdownHandler {
            var connection: Connection?
            var epoch: Int64?
            while !stopFlag.isSet && !Task.isCancelled {
                do {
                    if connection == nil || !connection!.isConnected {
                        connection = try await Connection.connectRetrying(configuration.conninfo, as: "leader lease", logger: logger)
                    }
                    let sent = ContinuousClock.now
                    let seconds = configuration.leaseDuration.seconds
                    if let held = epoch {
                        let renewed = try await connection!.query(Self.renew, [held, leadership.holder, seconds])
                        if renewed.isEmpty {
                            logger.warning("leader lease lost: another instance took over or it expired before renewal",
                                           metadata: ["epoch": "\(held)"])
                            epoch = nil
                            leadership.set(nil)
                            metrics.isLeader.set(to: 0)
                        } else {
                            leadership.set(.init(epoch: held, validUntil: sent + configuration.leaseDuration))
                        }
                    } else if let taken = try await connection!.query(Self.acquire, [leadership.holder, configuration.instance, seconds]).first {
                        let new = try taken.get(Int64.self, 0)
                        try await takeOver(epoch: new, on: connection!)
                        epoch = new
                        leadership.set(.init(epoch: new, validUntil: sent + configuration.leaseDuration))
                        metrics.isLeader.set(to: 1)
                        logger.notice("this instance is now the leader", metadata: ["instance": "\(configuration.instance)", "epoch": "\(new)"])
                        wakeup.signal()
                    }
                    try? await Task.sleep(for: epoch == nil ? configuration.pollInterval : configuration.renewInterval)
                } catch let error as PQError where error.isPermanent {
                    // A rejected login or a bad conninfo: retrying cannot fix it. Stop the process
                    // and let systemd's restart policy retry (the connect logged the reason).
                    throw error
                } catch let error as PQError where error.isConnectionProblem {
                    logger.warning("leader lease lost its database connection", metadata: ["error": "\(error)"])
                    connection?.close()
                    connection = nil
                    // Keep acting until the local deadline passes: the lease may still be ours.
                    if epoch != nil && leadership.currentEpoch == nil {
                        epoch = nil
                        metrics.isLeader.set(to: 0)
                    }
                } catch is CancellationError {
                    break
                } catch {
                    logger.error("leader lease query failed; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: configuration.pollInterval)
                }
            }
            leadership.set(nil)
            metrics.isLeader.set(to: 0)
            // Hand the lease over at once instead of making the next leader wait for it to expire.
            if let epoch, let connection, connection.isConnected {
                _ = try? await connection.execute(Self.release, [epoch, leadership.holder])
            }
            connection?.close()
        } onGracefulShutdown: {
            self.stopFlag.set()
        }
    }

    /// A new leader first fails whatever the previous one left in `training`: it cannot be resumed
    /// from a half-written trajectory, and redoing it is cheap compared with guessing.
    func takeOver(epoch: Int64, on connection: Connection) async throws {
        let (bases, versions) = try await connection.transaction { tx -> (Int, Int) in
            try await tx.query("SELECT tov.leader_fence($1)", [epoch])
            let bases = try await tx.execute("UPDATE tov.base_models SET status = 'failed', finished_at = now() WHERE status = 'training'")
            let versions = try await tx.execute("UPDATE tov.model_versions SET status = 'failed' WHERE status = 'training'")
            try await tx.execute("UPDATE tov.leader_activity SET activity = 'idle', reason = NULL, detail = NULL, done = NULL, total = NULL, unit = NULL, started_at = NULL, updated_at = now()")
            return (bases, versions)
        }
        if bases + versions > 0 {
            logger.notice("previous leader died while training; its work will be redone",
                          metadata: ["base_models": "\(bases)", "model_versions": "\(versions)"])
        }
    }
}
