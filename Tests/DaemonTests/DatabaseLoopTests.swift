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
