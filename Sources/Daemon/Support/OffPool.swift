import Foundation
import Synchronization

/// Runs CPU-heavy synchronous work (training, scoring) on a thread of its own, so it never blocks
/// Swift's cooperative pool, where the database I/O, the watcher and the signal handlers run.
func runOffPool<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        OffPool.running.withLock { $0 += 1 }
        let thread = Thread {
            defer { OffPool.running.withLock { $0 -= 1 } }
            do {
                continuation.resume(returning: try body())
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// The off-pool threads still running. A graceful stop abandons a scoring it cannot interrupt (its
/// claims are released at once), but the process must not exit under it: exiting runs OpenBLAS's
/// clean-up, which frees the buffers the thread is still computing in (a crash, seen in the fault
/// suite's "SIGTERM during a batch"). So `tovd run` waits for them before it returns.
enum OffPool {
    static let running = Mutex(0)

    /// Returns once no off-pool thread runs, or after `limit` (then false).
    static func drain(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while running.withLock({ $0 }) > 0 {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}

/// A model (or anything else not Sendable) lent to an off-pool thread while its owner awaits that
/// thread: one side touches it at a time, so crossing the boundary shares nothing.
struct Lent<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
