import Synchronization

/// A clock that moves only when a test says so (`advance(by:)`), for the services' time-dependent
/// rules: a test runs a service on it (wrapped in a ``DaemonClock``) and waits for events instead
/// of sleeping. `tovd run` never uses it.
///
/// `waitForSleepers` is its test signal: it returns once that many tasks sleep on the clock, so a
/// test knows a service has reached its wait before it moves time past it.
public final class ManualClock: Clock, Sendable {
    public struct Instant: InstantProtocol {
        public var offset: Duration
        public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Duration { other.offset - offset }
        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleeping: [(id: Int, deadline: Instant, wake: CheckedContinuation<Void, Never>)] = []
        var nextSleeper = 0
        /// Sleepers cancelled before they came to sleep.
        var cancelled: Set<Int> = []
        /// Tests waiting for `count` sleepers (``waitForSleepers(_:timeout:)``).
        var waiters: [(id: Int, count: Int, wake: CheckedContinuation<Bool, Never>)] = []
        var nextWaiter = 0

        /// Takes out the waiters whose count is reached.
        mutating func satisfiedWaiters() -> [CheckedContinuation<Bool, Never>] {
            let count = sleeping.count
            defer { waiters.removeAll { $0.count <= count } }
            return waiters.filter { $0.count <= count }.map(\.wake)
        }
    }
    private let state = Mutex(State())

    public init() {}

    public var now: Instant { state.withLock { $0.now } }
    public var minimumResolution: Duration { .zero }
    /// How many tasks sleep on the clock now.
    public var sleepers: Int { state.withLock { $0.sleeping.count } }

    /// Returns once `advance` reaches `deadline` (at once if it is past); throws `CancellationError`
    /// when the sleeping task is cancelled, as `ContinuousClock.sleep` does.
    public func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = state.withLock { state -> Int in state.nextSleeper += 1; return state.nextSleeper }
        try await withTaskCancellationHandler {
            await withCheckedContinuation { (wake: CheckedContinuation<Void, Never>) in
                let (due, waiters) = state.withLock { state -> (Bool, [CheckedContinuation<Bool, Never>]) in
                    guard state.now < deadline, !state.cancelled.contains(id) else { return (true, []) }
                    state.sleeping.append((id, deadline, wake))
                    return (false, state.satisfiedWaiters())
                }
                if due { wake.resume() }
                for waiter in waiters { waiter.resume(returning: true) }
            }
        } onCancel: {
            let wake = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let index = state.sleeping.firstIndex(where: { $0.id == id }) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return state.sleeping.remove(at: index).wake
            }
            wake?.resume()
        }
        state.withLock { _ = $0.cancelled.remove(id) }
        try Task.checkCancellation()
    }

    /// Moves time forward and wakes every sleeper whose deadline it reaches.
    public func advance(by duration: Duration) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleeping.filter { !(now < $0.deadline) }.map(\.wake)
            state.sleeping.removeAll { !(now < $0.deadline) }
            return due
        }
        for wake in woken { wake.resume() }
    }

    /// Whether `count` tasks came to sleep on the clock within `timeout` of wall time (false if they
    /// did not: a service that never waits fails the test instead of hanging it).
    public func waitForSleepers(_ count: Int, timeout: Duration = .seconds(30)) async -> Bool {
        await withCheckedContinuation { (wake: CheckedContinuation<Bool, Never>) in
            let id = state.withLock { state -> Int? in
                guard state.sleeping.count < count else { return nil }
                state.nextWaiter += 1
                state.waiters.append((state.nextWaiter, count, wake))
                return state.nextWaiter
            }
            guard let id else { return wake.resume(returning: true) }
            // The bound on a test that would otherwise hang; wall time, since this clock stands still.
            Task {
                try? await Task.sleep(for: timeout)
                let expired = self.state.withLock { state -> CheckedContinuation<Bool, Never>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index).wake
                }
                expired?.resume(returning: false)
            }
        }
    }
}
