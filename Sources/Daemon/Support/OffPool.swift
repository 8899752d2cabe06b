import Foundation

/// Runs CPU-heavy synchronous work (training, scoring) on a thread of its own, so it never blocks
/// Swift's cooperative pool, where the database I/O, the watcher and the signal handlers run.
func runOffPool<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
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
