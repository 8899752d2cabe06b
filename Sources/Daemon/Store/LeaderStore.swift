import PQ

/// The leader lease's statements (tov.leader). The lease is compared with the database clock, never a
/// host's: `clock_timestamp()`, so a long transaction cannot stretch it.
enum LeaderStore {
    /// Takes the lease when it is free, expired or already this holder's ($1 holder, $2 instance,
    /// $3 seconds); returns the new epoch, or no row when another instance holds it.
    static let leaseAcquire = """
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

    /// Extends a lease still held ($1 epoch, $2 holder, $3 seconds); no row when it was lost.
    static let leaseRenew = """
        UPDATE tov.leader SET heartbeat_at = now(), lease_until = clock_timestamp() + make_interval(secs => $3::float8)
        WHERE epoch = $1 AND holder = $2 AND lease_until > clock_timestamp()
        RETURNING epoch
        """

    /// $1 milliseconds, for the session: a leader connection idle in a transaction longer than a lease
    /// is ended by the server.
    static let sessionIdleInTransactionTimeoutSet = "SELECT set_config('idle_in_transaction_session_timeout', $1, false)"

    /// Locks the lease row for the rest of the transaction, or raises TV001 when epoch $1 is no longer
    /// the live one: every write of a leader job comes after it.
    static let leaderFence = "SELECT tov.leader_fence($1)"

    static let leaseRelease = "UPDATE tov.leader SET lease_until = NULL, holder = NULL WHERE epoch = $1 AND holder = $2"

    static func leaseAcquire(holder: String, instance: String, seconds: Double, on connection: Connection) async throws -> Int64? {
        try await connection.query(leaseAcquire, [holder, instance, seconds]).first.map { try $0.get(Int64.self, "epoch") }
    }

    static func leaseRenew(epoch: Int64, holder: String, seconds: Double, on connection: Connection) async throws -> Bool {
        !(try await connection.query(leaseRenew, [epoch, holder, seconds]).isEmpty)
    }

    static func leaseRelease(epoch: Int64, holder: String, on connection: Connection) async throws {
        try await connection.execute(leaseRelease, [epoch, holder])
    }

    /// A new leader's first transaction, under its fence: what the previous leader left in `training`
    /// fails (a half-written trajectory cannot be resumed; the requests it served stay pending), and
    /// the activity row starts over. Returns (base models, versions) failed.
    static func leaderTakeOver(epoch: Int64, on connection: Connection) async throws -> (bases: Int, versions: Int) {
        try await connection.transaction { tx in
            try await tx.query(leaderFence, [epoch])
            let failed = try await TrainingStore.trainingInterruptedFailMany(on: tx)
            try await tx.execute(leaderActivityReset)
            return failed
        }
    }

    static let leaderActivityReset = """
        UPDATE tov.leader_activity SET activity = 'idle', reason = NULL, detail = NULL, done = NULL, done_at_start = NULL,
            total = NULL, unit = NULL, started_at = NULL, updated_at = now()
        """
}
