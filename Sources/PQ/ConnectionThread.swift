import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A serial worker thread for one connection's blocking libpq calls.
///
/// Jobs run in submission order. When the queue is empty and idle work is set (a LISTEN stream),
/// the thread runs it — it waits on the connection's socket — and a self-pipe wakes that wait as
/// soon as a new job arrives, so queries are not delayed by the wait.
final class ConnectionThread: @unchecked Sendable {
    // @unchecked: the job queue and flags are guarded by `condition`; the pipe fds never change.
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var stopping = false
    private var exited = false
    private var idleWork: (() -> Void)?
    private let wakeRead: Int32
    private let wakeWrite: Int32

    init(name: String) {
        var fds: [Int32] = [0, 0]
        pipe(&fds)
        wakeRead = fds[0]
        wakeWrite = fds[1]
        _ = fcntl(wakeRead, F_SETFL, fcntl(wakeRead, F_GETFL) | O_NONBLOCK)
        _ = fcntl(wakeWrite, F_SETFL, fcntl(wakeWrite, F_GETFL) | O_NONBLOCK)
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    deinit {
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
    }

    /// Runs `body` on the thread and returns its result to the awaiting task.
    func run<T>(_ body: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Handoff<T>, Error>) in
            submit { continuation.resume(with: Result { Handoff(value: try body()) }) }
        }.value
    }

    /// Queues `job`. After the thread exited, runs it on the caller: jobs of a closed connection
    /// only find a nil handle and throw, so nothing is left waiting forever.
    func submit(_ job: @escaping () -> Void) {
        condition.lock()
        if exited {
            condition.unlock()
            job()
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
        wake()
    }

    /// Lets the thread exit once the queued jobs ran.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        wake()
    }

    func setIdleWork(_ work: (() -> Void)?) {
        condition.lock()
        idleWork = work
        condition.signal()
        condition.unlock()
        wake()
    }

    /// Waits until `socket` is readable, a job is submitted, or the timeout passes.
    func waitForInput(socket: Int32, timeoutMilliseconds: Int32) {
        var fds = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        _ = poll(&fds, 2, timeoutMilliseconds)
        var drain = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &drain, drain.count) > 0 {}
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping && idleWork == nil {
                condition.wait()
            }
            if !jobs.isEmpty {
                let job = jobs.removeFirst()
                condition.unlock()
                job()
                continue
            }
            if stopping {
                exited = true
                condition.unlock()
                return
            }
            let idle = idleWork
            condition.unlock()
            idle?()
        }
    }
}

/// A value made on the connection thread and handed to the one task awaiting it: no reference to it
/// stays on the thread, so it crosses once and is never shared.
struct Handoff<T>: @unchecked Sendable {
    let value: T
}
