import Synchronization

/// Resumes a continuation exactly once, from whichever of several racers gets there first.
final class ResumeOnce<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, Error>?
        var early: Result<T, Error>?
        var done = false
    }
    private let state = Mutex(State())

    func install(_ continuation: CheckedContinuation<T, Error>) {
        let resolved = state.withLock { state -> Result<T, Error>? in
            if let early = state.early { return early }
            state.continuation = continuation
            return nil
        }
        if let resolved { continuation.resume(with: resolved) }
    }

    func resume(with result: Result<T, Error>) {
        let target = state.withLock { state -> CheckedContinuation<T, Error>? in
            guard !state.done else { return nil }
            state.done = true
            guard let continuation = state.continuation else { state.early = result; return nil }
            state.continuation = nil
            return continuation
        }
        target?.resume(with: result)
    }
}
