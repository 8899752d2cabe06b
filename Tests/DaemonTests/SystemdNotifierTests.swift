@testable import Daemon
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("systemd notify protocol")
struct SystemdNotifierTests {
    /// A datagram socket standing in for systemd's $NOTIFY_SOCKET.
    func withSocket(_ body: (String, Int32) throws -> Void) throws {
        let path = NSTemporaryDirectory() + "tovd-notify-\(UUID().uuidString.prefix(8))"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        try body(path, fd)
    }

    func receive(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
    }

    @Test func sendsReadyWatchdogAndStopping() throws {
        try withSocket { path, fd in
            let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"])
            #expect(notifier.isEnabled)
            #expect(notifier.watchdogInterval == .seconds(30))
            notifier.ready(status: "scoring")
            #expect(receive(fd) == "READY=1\nSTATUS=scoring")
            notifier.watchdog()
            #expect(receive(fd) == "WATCHDOG=1")
            notifier.stopping()
            #expect(receive(fd) == "STOPPING=1")
        }
    }

    @Test func doesNothingOutsideSystemd() {
        let notifier = SystemdNotifier(environment: [:])
        #expect(!notifier.isEnabled)
        #expect(notifier.watchdogInterval == nil)
        notifier.ready()
    }
}

@Suite("journald-friendly log lines")
struct LineLogHandlerTests {
    @Test func quotesValuesThatWouldSplitTheLine() {
        #expect(LineLogHandler.quoted("plain") == "plain")
        #expect(LineLogHandler.quoted("two words") == "\"two words\"")
        #expect(LineLogHandler.quoted("a=b") == "\"a=b\"")
        #expect(LineLogHandler.quoted("line\nbreak \"q\"") == "\"line\\nbreak \\\"q\\\"\"")
    }

    @Test func prioritiesFollowSyslog() {
        #expect(LineLogHandler.priority(.error) == 3)
        #expect(LineLogHandler.priority(.warning) == 4)
        #expect(LineLogHandler.priority(.info) == 6)
    }
}

/// On a clock the test moves: the wait's timeout can pass only when the test advances it, so a wait
/// that returns without an advance returned because of the signal.
@Suite("Wake-up signal", .timeLimit(.minutes(1)))
struct WakeupSignalTests {
    @Test func aSignalBeforeTheWaitIsNotLost() async {
        let clock = ManualClock()
        let signal = WakeupSignal()
        signal.signal()
        await signal.wait(timeout: .seconds(600), on: DaemonClock(clock))
        #expect(clock.now.offset == .zero)
    }

    @Test func waitWakesOnSignal() async {
        let clock = ManualClock()
        let signal = WakeupSignal()
        async let waited: Void = signal.wait(timeout: .seconds(600), on: DaemonClock(clock))
        // The test signal: the wait's timeout is running on the clock.
        #expect(await clock.waitForSleepers(1))
        signal.signal()
        await waited
        #expect(clock.sleepers == 0, "the timeout's sleep was left behind")
    }

    @Test func waitTimesOut() async {
        let clock = ManualClock()
        let signal = WakeupSignal()
        let returned = Mutex(false)
        let waiting = Task {
            await signal.wait(timeout: .milliseconds(50), on: DaemonClock(clock))
            returned.withLock { $0 = true }
        }
        #expect(await clock.waitForSleepers(1))
        clock.advance(by: .milliseconds(49))
        #expect(clock.sleepers == 1 && !returned.withLock { $0 }, "the wait ended before its timeout")
        clock.advance(by: .milliseconds(1))
        await waiting.value
        #expect(returned.withLock { $0 })
    }
}
