import Foundation
import Synchronization

/// Wakes sleeping loops early: a worker waits on it between empty polls, and the watcher signals it
/// when a NOTIFY arrives. A signal sent while nobody waits is remembered once, so a notification
/// that lands between "claim found nothing" and "start waiting" is not lost.
public final class WakeupSignal: Sendable {
    private struct State {
        var pending = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Wakes every waiter, or the next one to wait if none waits now.
    public func signal() {
        let woken = state.withLock { state in
            let woken = state.waiters
            state.waiters.removeAll()
            if woken.isEmpty { state.pending = true }
            return woken
        }
        for continuation in woken.values { continuation.resume() }
    }

    /// Returns after a signal, after `timeout` on `clock`, or on cancellation, whichever comes first.
    public func wait(timeout: Duration, on clock: DaemonClock) async {
        let id: UInt64? = state.withLock { state in
            if state.pending {
                state.pending = false
                return nil
            }
            defer { state.nextID += 1 }
            return state.nextID
        }
        guard let id else { return }

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow: Bool = self.state.withLock { state in
                            if state.pending || Task.isCancelled {
                                state.pending = false
                                return true
                            }
                            state.waiters[id] = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    self.resume(id)
                }
            }
            group.addTask { try? await clock.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func resume(_ id: UInt64) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }
}
