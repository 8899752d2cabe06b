@testable import Daemon
import Logging
import PQ
import Synchronization
import Testing
import TovTesting

/// The services' time-dependent rules, in process against PostgreSQL, on a clock the test moves:
/// each test reaches the edge of a duration and steps over it, so the rule is checked at the
/// boundary, and nothing waits on wall time (the services' events and the clock's sleepers say
/// when they got there).
@Suite("Services on a manual clock", .timeLimit(.minutes(2)))
struct ServiceClockTests {
    /// `tov.settings` is read again only when the cached copy is `maxAge` old on the cache's clock.
    @Test func settingsAreReadAgainOnlyOnceTheirMaxAgeHasPassed() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let manual = ManualClock()
            let cache = SettingsCache(maxAge: .seconds(5), clock: DaemonClock(manual))
            let first = try await cache.current(on: c).maxTextBytes
            try await c.execute("UPDATE tov.settings SET value = '2000' WHERE key = 'max_text_bytes'")
            #expect(first != 2000)
            manual.advance(by: .milliseconds(4_999))
            #expect(try await cache.current(on: c).maxTextBytes == first, "read again before its 5 s")
            manual.advance(by: .milliseconds(1))
            #expect(try await cache.current(on: c).maxTextBytes == 2000, "still the cached copy after its 5 s")
        }
    }

    /// The rate an instance reports (tov.workers.rows_per_second) is the rows scored since its last
    /// heartbeat over the time since then on its clock.
    @Test func theReportedRateIsRowsOverTheTimeBetweenHeartbeats() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let manual = ManualClock()
            let clock = DaemonClock(manual)
            let metrics = DaemonMetrics()
            let reporter = InstanceReporter(
                conninfo: conninfo, instance: "rate", holder: "rate#1", workers: 1, leaderCapable: false, interval: .seconds(2),
                settings: SettingsCache(clock: clock), metrics: metrics, health: HealthState(metrics: metrics),
                notifier: SystemdNotifier(environment: [:]), clock: clock, logger: Logger(label: "test"))
            var wrote = reporter.events.subscribe().makeAsyncIterator()
            let running = Task { try await reporter.run() }
            defer { running.cancel() }
            #expect(await wrote.next() == .wrote(rowsPerSecond: nil))
            metrics.rowsScored.increment(by: 10)
            // The reporter waits out its interval on the clock; then it writes again.
            #expect(await manual.waitForSleepers(1))
            manual.advance(by: .seconds(2))
            #expect(await wrote.next() == .wrote(rowsPerSecond: 5))
            let stored = try await c.query("SELECT rows_per_second FROM tov.instances WHERE holder = 'rate#1'").first?
                .getOptional(Double.self, "rows_per_second")
            #expect(stored == 5)
            running.cancel()
            try? await running.value
        }
    }

    /// Every committed batch wakes the selection keeper; it folds a burst into one update per
    /// `minimumGap` on its clock: a step ends no sooner than the gap after it began.
    @Test func theSelectionKeeperWaitsOutItsMinimumGapOnItsClock() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            // Nothing to switch in an empty pool: the step decides (and writes, under the lease), then paces.
            let (manual, keeper, fence) = try await Self.leadingKeeper(minimumGap: .milliseconds(200), on: c)
            let step = Task { try await keeper.step(fence: fence, on: c) }
            #expect(await manual.waitForSleepers(1), "the step did not wait for its gap")
            manual.advance(by: .milliseconds(199))
            #expect(manual.sleepers == 1, "the step ended before its 200 ms gap")
            manual.advance(by: .milliseconds(1))
            #expect(try await step.value == .seconds(1))
        }
    }

    /// A selection keeper on a manual clock, holding the lease (taken on `c`) its steps write under.
    static func leadingKeeper(minimumGap: Duration, on c: Connection) async throws -> (ManualClock, SelectionKeeper, LeaderFence) {
        let manual = ManualClock()
        let clock = DaemonClock(manual)
        let keeper = SelectionKeeper(settings: SettingsCache(clock: clock), workers: WakeupSignal(), metrics: DaemonMetrics(),
                                     minimumGap: minimumGap, clock: clock, logger: Logger(label: "test"))
        let leadership = Leadership(instance: "keeper", clock: clock)
        let epoch = try #require(try await LeaderStore.leaseAcquire(holder: leadership.holder, instance: "keeper", seconds: 60, on: c))
        return (manual, keeper, LeaderFence(epoch: epoch, leadership: leadership))
    }

    /// A version whose checkpoints do not load is tried again only after its retry delay on the
    /// worker's clock, not on every batch. Seen through the failure's reason: the reason changes
    /// meanwhile (a missing checkpoint row appears, corrupt), and the cache reports a new reason only
    /// when it tries again.
    @Test func aVersionThatDoesNotLoadIsTriedAgainOnlyAfterItsRetryDelay() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery("""
                INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (0, 1, '{}', 'complete');
                INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 1, 'A', 'complete');
                """)
            let manual = ManualClock()
            let reported = ReportedErrors()
            let cache = ModelCache(logger: Logger(label: "test"), retryDelay: (.seconds(2), .seconds(60)), clock: DaemonClock(manual),
                                   onError: { reported.append($0) })
            #expect(try await cache.versions(on: c).unloadable == [1])
            #expect(reported.all.count == 1 && reported.all[0].contains("missing"), "\(reported.all)")
            try await c.execute("""
                INSERT INTO tov.checkpoints (base_version, model_version, kind, epoch, data, sha256) VALUES (1, NULL, 'base', 1, '\\x00', 'not its hash')
                """)
            manual.advance(by: .milliseconds(1_999))
            #expect(try await cache.versions(on: c).unloadable == [1])
            #expect(reported.all.count == 1, "tried again before its 2 s: \(reported.all)")
            manual.advance(by: .milliseconds(1))
            #expect(try await cache.versions(on: c).unloadable == [1])
            #expect(reported.all.count == 2 && reported.all[1].contains("is corrupt"), "not tried again after its 2 s: \(reported.all)")
        }
    }
}

/// The messages a ModelCache reported, in order.
final class ReportedErrors: Sendable {
    private let messages = Mutex<[String]>([])
    func append(_ message: String) { messages.withLock { $0.append(message) } }
    var all: [String] { messages.withLock { $0 } }
}
