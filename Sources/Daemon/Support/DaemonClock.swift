/// The clock the daemon's services read and wait on: the continuous clock in `tovd run` (composed
/// once, in `TovDaemon.run`), a ``ManualClock`` in a test that advances time itself.
///
/// Its instants are `ContinuousClock.Instant`s so the pure deciders (`LeaseMachine`, `TrainerPolicy`)
/// keep the one instant type they are written and tested with; another clock's time is laid onto
/// them from the moment this value was made (the one read of the continuous clock here is that
/// anchor, not a decision).
public struct DaemonClock: Clock {
    public typealias Instant = ContinuousClock.Instant
    public typealias Duration = Swift.Duration

    private let origin: ContinuousClock.Instant
    private let elapsed: @Sendable () -> Duration
    private let sleepUntil: @Sendable (_ offset: Duration, _ tolerance: Duration?) async throws -> Void
    public let minimumResolution: Duration

    public init<C: Clock>(_ clock: C) where C.Duration == Swift.Duration {
        let start = clock.now
        origin = ContinuousClock.now
        elapsed = { start.duration(to: clock.now) }
        sleepUntil = { offset, tolerance in try await clock.sleep(until: start.advanced(by: offset), tolerance: tolerance) }
        minimumResolution = clock.minimumResolution
    }

    /// The production clock.
    public static var continuous: DaemonClock { DaemonClock(ContinuousClock()) }

    public var now: Instant { origin + elapsed() }

    public func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        try await sleepUntil(origin.duration(to: deadline), tolerance)
    }
}
