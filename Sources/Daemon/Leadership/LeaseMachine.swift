/// The leader lease's rules as a value: which statement to send next, what its answer means, and how
/// long to wait. ``LeaderLease`` runs the statements and applies the actions; tests feed answers.
///
/// The local deadline is the lease's duration after a renewal was *sent* (not answered), so this
/// process stops acting before the database's own `lease_until` can pass, even when the database
/// cannot be reached.
struct LeaseMachine: Sendable {
    enum Query: Equatable, Sendable {
        case acquire
        case renew(epoch: Int64)
    }

    enum Action: Equatable, Sendable {
        /// Nothing changed (still a standby, or still the leader with a new deadline).
        case none
        /// Leadership gained: fail what the previous leader left half-done, then act until the deadline.
        case becameLeader(epoch: Int64, validUntil: ContinuousClock.Instant)
        case renewed(epoch: Int64, validUntil: ContinuousClock.Instant)
        /// The database says the lease is no longer ours (expired before renewal, or taken over).
        case lost(epoch: Int64)
    }

    let leaseDuration: Duration
    let renewInterval: Duration
    let pollInterval: Duration
    private(set) var epoch: Int64?

    init(leaseDuration: Duration, renewInterval: Duration, pollInterval: Duration) {
        self.leaseDuration = leaseDuration
        self.renewInterval = renewInterval
        self.pollInterval = pollInterval
    }

    var nextQuery: Query { epoch.map { .renew(epoch: $0) } ?? .acquire }

    /// How long to wait before the next statement: renew well within the lease, poll while a standby.
    var pause: Duration { epoch == nil ? pollInterval : renewInterval }

    /// The answer to `.acquire` sent at `sentAt`: the new epoch, or nil when another instance holds it.
    mutating func acquired(_ taken: Int64?, sentAt: ContinuousClock.Instant) -> Action {
        guard let taken else { return .none }
        epoch = taken
        return .becameLeader(epoch: taken, validUntil: sentAt + leaseDuration)
    }

    /// The answer to `.renew` sent at `sentAt`: whether the database extended the lease.
    mutating func renewed(_ extended: Bool, sentAt: ContinuousClock.Instant) -> Action {
        guard let held = epoch else { return .none }
        guard extended else {
            epoch = nil
            return .lost(epoch: held)
        }
        return .renewed(epoch: held, validUntil: sentAt + leaseDuration)
    }

    /// The connection dropped. The lease may still be ours in the database: keep it until the local
    /// deadline passes (`stillValid` false), then stop claiming it.
    mutating func connectionLost(stillValid: Bool) -> Action {
        guard let held = epoch, !stillValid else { return .none }
        epoch = nil
        return .lost(epoch: held)
    }
}
