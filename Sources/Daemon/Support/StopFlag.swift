import Synchronization

/// A flag set once from a graceful-shutdown handler and read by a loop; handlers registered with
/// `onSet` run when it is set.
final class StopFlag: Sendable {
    private struct State {
        var isSet = false
        var handlers: [Int: @Sendable () -> Void] = [:]
        var nextToken = 0
    }
    private let state = Mutex(State())

    var isSet: Bool { state.withLock { $0.isSet } }

    func set() {
        let pending = state.withLock { state -> [@Sendable () -> Void] in
            state.isSet = true
            defer { state.handlers = [:] }
            return Array(state.handlers.values)
        }
        for handler in pending { handler() }
    }

    /// Runs `handler` when the flag is set, or at once if it is; returns a token for `remove`
    /// (nil when it already ran).
    func onSet(_ handler: @escaping @Sendable () -> Void) -> Int? {
        let token = state.withLock { state -> Int? in
            guard !state.isSet else { return nil }
            state.nextToken += 1
            state.handlers[state.nextToken] = handler
            return state.nextToken
        }
        if token == nil { handler() }
        return token
    }

    func remove(_ token: Int) {
        _ = state.withLock { $0.handlers.removeValue(forKey: token) }
    }
}
