import Foundation

/// Wakes sleeping loops early: a worker waits on it between empty polls, and the watcher signals it
/// when a NOTIFY arrives. A signal sent while nobody waits is remembered once, so a notification
/// that lands between "claim found nothing" and "start waiting" is not lost.
public final class WakeupSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = false
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextID: UInt64 = 0

    public init() {}

    /// Wakes every waiter, or the next one to wait if none waits now.
    public func signal() {
        lock.lock()
        let woken = waiters
        waiters.removeAll()
        if woken.isEmpty { pending = true }
        lock.unlock()
        for continuation in woken.values { continuation.resume() }
    }

    /// Returns after a signal, after `timeout`, or on cancellation, whichever comes first.
    public func wait(timeout: Duration) async {
        let id: UInt64? = lock.withLock {
            if pending {
                pending = false
                return nil
            }
            defer { nextID += 1 }
            return nextID
        }
        guard let id else { return }

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow: Bool = self.lock.withLock {
                            if self.pending || Task.isCancelled {
                                self.pending = false
                                return true
                            }
                            self.waiters[id] = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    self.resume(id)
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func resume(_ id: UInt64) {
        lock.lock()
        let continuation = waiters.removeValue(forKey: id)
        lock.unlock()
        continuation?.resume()
    }
}
