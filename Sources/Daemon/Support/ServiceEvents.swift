import Synchronization

/// What a service reports as it happens, for a test to wait on instead of sleeping (hummingbird's and
/// River's test signals). `tovd run` subscribes to none: an event nobody waits for costs a lock and
/// an empty loop.
public final class ServiceEvents<Event: Sendable>: Sendable {
    private struct State {
        var subscribers: [Int: AsyncStream<Event>.Continuation] = [:]
        var next = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Every event from now on, until the stream is dropped. Subscribe before causing what you wait for.
    public func subscribe() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        let id = state.withLock { state -> Int in
            state.next += 1
            state.subscribers[state.next] = continuation
            return state.next
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    func emit(_ event: Event) {
        for subscriber in state.withLock({ Array($0.subscribers.values) }) { subscriber.yield(event) }
    }
}
