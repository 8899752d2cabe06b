@testable import Daemon
import Logging
import Synchronization
import Testing

/// The one database loop's rules, on a clock the test advances: no sleeping, no database (the
/// iterations here never ask for a connection).
@Suite("Database loop")
struct DatabaseLoopTests {
    struct Failure: Error {}

    @Test func anErrorIsReportedAndTheNextTryWaitsOutThePauseOnTheLoopsClock() async throws {
        let clock = ManualClock()
        let stop = StopFlag()
        let loop = DatabaseLoop(conninfo: "dbname=unused", name: "test", logger: Logger(label: "test"), stopping: stop, clock: clock)
        loop.errorPause = .seconds(5)
        let calls = Mutex(0)
        let errors = Mutex(0)
        let running = Task {
            try await loop.run(onError: { _ in errors.withLock { $0 += 1 } }) {
                let call = calls.withLock { $0 += 1; return $0 }
                if call == 1 { throw Failure() }
                stop.set()
            }
        }
        // The test signal: the loop is pausing on the clock.
        #expect(await clock.waitForSleepers(1))
        #expect(calls.withLock { $0 } == 1 && errors.withLock { $0 } == 1)
        clock.advance(by: .seconds(4))
        #expect(clock.sleepers == 1, "the pause ended before its 5 s")
        #expect(calls.withLock { $0 } == 1)
        clock.advance(by: .seconds(1))
        try await running.value
        #expect(calls.withLock { $0 } == 2)
        #expect(errors.withLock { $0 } == 1)
    }

    @Test func aCancellationWhileStoppingEndsTheLoopWithoutAnError() async throws {
        let stop = StopFlag()
        let loop = DatabaseLoop(conninfo: "dbname=unused", name: "test", logger: Logger(label: "test"), stopping: stop, clock: ManualClock())
        let errors = Mutex(0)
        let cancelled = Mutex(0)
        try await loop.run(onError: { _ in errors.withLock { $0 += 1 } }, onCancelled: { cancelled.withLock { $0 += 1 } }) {
            stop.set()
            throw CancellationError()
        }
        #expect(errors.withLock { $0 } == 0 && cancelled.withLock { $0 } == 0)
    }

    @Test func aCancellationWhileRunningIsHandedToTheService() async throws {
        let stop = StopFlag()
        let loop = DatabaseLoop(conninfo: "dbname=unused", name: "test", logger: Logger(label: "test"), stopping: stop, clock: ManualClock())
        let cancelled = Mutex(0)
        let calls = Mutex(0)
        try await loop.run(onError: { _ in }, onCancelled: { cancelled.withLock { $0 += 1 } }) {
            // A training stopped by a lost lease: the service hears of it and the loop goes on.
            if calls.withLock({ $0 += 1; return $0 }) == 1 { throw CancellationError() }
            stop.set()
        }
        #expect(cancelled.withLock { $0 } == 1 && calls.withLock { $0 } == 2)
    }
}

/// A clock that moves only when the test says so. `waitForSleepers` is the test signal: it returns
/// once that many tasks sleep on the clock.
final class ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleeping: [(deadline: Instant, wake: CheckedContinuation<Void, Never>)] = []
    }
    private let state = Mutex(State())

    var now: Instant { state.withLock { $0.now } }
    var minimumResolution: Duration { .zero }
    var sleepers: Int { state.withLock { $0.sleeping.count } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        await withCheckedContinuation { (wake: CheckedContinuation<Void, Never>) in
            let due = state.withLock { state -> Bool in
                guard state.now < deadline else { return true }
                state.sleeping.append((deadline, wake))
                return false
            }
            if due { wake.resume() }
        }
    }

    func advance(by duration: Duration) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleeping.filter { !(now < $0.deadline) }.map(\.wake)
            state.sleeping.removeAll { !(now < $0.deadline) }
            return due
        }
        for wake in woken { wake.resume() }
    }

    /// Whether `count` tasks came to sleep on the clock (false if they did not after many turns of
    /// the scheduler: a loop that never pauses fails the test instead of hanging it).
    func waitForSleepers(_ count: Int) async -> Bool {
        for _ in 0..<100_000 where sleepers < count { await Task.yield() }
        return sleepers >= count
    }
}
