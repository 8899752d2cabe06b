/// The selection keeper's rule as a value: switch to a rescored version once its last job is done,
/// else recompute the selection when it is out of date, else nothing. Decided for one target at a
/// time (the snapshot is that target's versions and selection state). Decided from the database's
/// state alone (tov.selection_state says what the selection was computed under), never from what a
/// process remembers: a leader that lost the lease and got it back after another changed the
/// settings still sees the truth.
enum SelectionKeeperPolicy {
    struct Snapshot: Equatable, Sendable {
        struct Scoring: Equatable, Sendable {
            var version: Int
            var base: Int
            /// Jobs of the version still queued or claimed.
            var jobsLeft: Int
        }
        var completeVersion: Int?
        var scoring: Scoring?
        /// The complete version has scores not yet placed in a length bin (new rows).
        var unbinnedScores: Bool
        /// Binned rows were deleted (a trigger records them in tov.scores_removed).
        var removedScores: Bool
        /// The selection was computed under another version or other selection settings.
        var computedUnderOther: Bool
    }

    enum Action: Equatable, Sendable {
        case nothing
        /// Every eligible row has a score under `version`: switch to it in one transaction.
        case switchTo(version: Int, base: Int)
        case update(version: Int)
    }

    static func decide(_ s: Snapshot) -> Action {
        if let scoring = s.scoring, scoring.jobsLeft == 0 { return .switchTo(version: scoring.version, base: scoring.base) }
        guard let complete = s.completeVersion else { return .nothing }
        return s.unbinnedScores || s.removedScores || s.computedUnderOther ? .update(version: complete) : .nothing
    }
}
