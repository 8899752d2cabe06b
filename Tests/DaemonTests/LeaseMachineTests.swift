@testable import Daemon
import Testing

/// The leader lease's rules, fed answers instead of a database.
@Suite("Lease machine")
struct LeaseMachineTests {
    static let t0 = ContinuousClock.now
    static func machine() -> LeaseMachine {
        LeaseMachine(leaseDuration: .seconds(10), renewInterval: .seconds(2), pollInterval: .seconds(1))
    }

    @Test func aStandbyPollsUntilItAcquires() {
        var m = Self.machine()
        #expect(m.nextQuery == .acquire && m.pause == .seconds(1))
        #expect(m.acquired(nil, sentAt: Self.t0) == .none)
        #expect(m.nextQuery == .acquire)
        // The deadline counts from when the statement was sent, not answered.
        #expect(m.acquired(7, sentAt: Self.t0) == .becameLeader(epoch: 7, validUntil: Self.t0 + .seconds(10)))
        #expect(m.nextQuery == .renew(epoch: 7) && m.pause == .seconds(2))
    }

    @Test func aRenewalExtendsTheDeadlineAndARefusalLosesTheLease() {
        var m = Self.machine()
        _ = m.acquired(3, sentAt: Self.t0)
        #expect(m.renewed(true, sentAt: Self.t0 + .seconds(2)) == .renewed(epoch: 3, validUntil: Self.t0 + .seconds(12)))
        #expect(m.renewed(false, sentAt: Self.t0 + .seconds(4)) == .lost(epoch: 3))
        #expect(m.nextQuery == .acquire)
    }

    @Test func aLostConnectionKeepsTheLeaseUntilTheLocalDeadline() {
        var m = Self.machine()
        _ = m.acquired(5, sentAt: Self.t0)
        #expect(m.connectionLost(stillValid: true) == .none)
        #expect(m.nextQuery == .renew(epoch: 5))
        #expect(m.connectionLost(stillValid: false) == .lost(epoch: 5))
        #expect(m.connectionLost(stillValid: false) == .none)
    }
}

/// The selection keeper's rule: switch, update, or nothing.
@Suite("Selection keeper policy")
struct SelectionKeeperPolicyTests {
    static func snapshot(_ edit: (inout SelectionKeeperPolicy.Snapshot) -> Void = { _ in }) -> SelectionKeeperPolicy.Snapshot {
        var s = SelectionKeeperPolicy.Snapshot(completeVersion: 4, scoring: nil, unbinnedScores: false, removedScores: false,
                                               computedUnderOther: false)
        edit(&s)
        return s
    }

    @Test func anUpToDateSelectionIsLeftAlone() {
        #expect(SelectionKeeperPolicy.decide(Self.snapshot()) == .nothing)
        #expect(SelectionKeeperPolicy.decide(Self.snapshot { $0.completeVersion = nil }) == .nothing)
    }

    @Test func newScoresRemovedRowsOrOtherSettingsUpdateIt() {
        #expect(SelectionKeeperPolicy.decide(Self.snapshot { $0.unbinnedScores = true }) == .update(version: 4))
        #expect(SelectionKeeperPolicy.decide(Self.snapshot { $0.removedScores = true }) == .update(version: 4))
        #expect(SelectionKeeperPolicy.decide(Self.snapshot { $0.computedUnderOther = true }) == .update(version: 4))
    }

    @Test func aRescoredVersionSwitchesInOnlyWhenItsLastJobIsDone() {
        let rescoring = Self.snapshot { $0.scoring = .init(version: 5, base: 2, jobsLeft: 30); $0.unbinnedScores = true }
        // Meanwhile the complete version's selection keeps up with new rows.
        #expect(SelectionKeeperPolicy.decide(rescoring) == .update(version: 4))
        var done = rescoring
        done.scoring!.jobsLeft = 0
        #expect(SelectionKeeperPolicy.decide(done) == .switchTo(version: 5, base: 2))
        #expect(SelectionKeeperPolicy.decide(Self.snapshot { $0.completeVersion = nil; $0.scoring = .init(version: 1, base: 1, jobsLeft: 0) })
                == .switchTo(version: 1, base: 1))
    }
}
