@testable import Daemon
import Testing

/// A leader acts only while its term is valid on its own clock: a term that is not renewed lapses
/// when the clock passes it, whatever the database does meanwhile.
@Suite("Leadership on a clock")
struct LeadershipTests {
    @Test func aTermLapsesWhenTheLeadershipsClockPassesItWithoutARenewal() {
        let manual = ManualClock()
        let clock = DaemonClock(manual)
        let leadership = Leadership(instance: "test", clock: clock)
        var machine = LeaseMachine(leaseDuration: .seconds(10), renewInterval: .seconds(2), pollInterval: .seconds(1))
        guard case .becameLeader(let epoch, let validUntil) = machine.acquired(7, sentAt: clock.now) else {
            Issue.record("the machine did not take the lease")
            return
        }
        leadership.set(.init(epoch: epoch, validUntil: validUntil))
        #expect(leadership.currentEpoch == 7)
        manual.advance(by: .milliseconds(9_999))
        #expect(leadership.holds(7), "the term ended before its 10 s")
        manual.advance(by: .milliseconds(1))
        #expect(leadership.currentEpoch == nil, "the term outlived its 10 s on the leadership's clock")
        #expect(!leadership.holds(7))
    }
}
