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

/// A model (or anything else not Sendable) lent to an off-pool thread while its owner awaits that
/// thread: one side touches it at a time, so crossing the boundary shares nothing.
struct Lent<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
