@testable import Daemon
import Foundation
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

@Suite("Wake-up signal")
struct WakeupSignalTests {
    @Test func aSignalBeforeTheWaitIsNotLost() async {
        let signal = WakeupSignal()
        signal.signal()
        let start = ContinuousClock.now
        await signal.wait(timeout: .seconds(600))
        // Far below the timeout: returned because of the signal (CPU-bound tests may share the pool).
        #expect(ContinuousClock.now - start < .seconds(500))
    }

    @Test func waitWakesOnSignal() async {
        let signal = WakeupSignal()
        let start = ContinuousClock.now
        async let waited: Void = signal.wait(timeout: .seconds(600))
        try? await Task.sleep(for: .milliseconds(50))
        signal.signal()
        await waited
        // Returned because of the signal, not the timeout: well below 600 s, however long CPU-bound
        // suites hold the cooperative pool (130 s was seen on a loaded 2-core box).
        #expect(ContinuousClock.now - start < .seconds(500))
    }

    @Test func waitTimesOut() async {
        let signal = WakeupSignal()
        let start = ContinuousClock.now
        await signal.wait(timeout: .milliseconds(50))
        #expect(ContinuousClock.now - start >= .milliseconds(50))
    }
}
