@testable import Daemon
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The /metrics and /healthz endpoint under clients that misbehave: slow, many, or gone mid-answer.
/// Real sockets on 127.0.0.1; waits are bounded by socket timeouts, never by sleeping for an answer.
@Suite("Metrics endpoint")
struct MetricsServerTests {
    static func server(maxClients: Int = 16, deadline: Duration = .seconds(2), body: [UInt8] = Array("ok\n".utf8)) throws -> MetricsServer {
        let server = try MetricsServer(port: 0, maxClients: maxClients, requestDeadline: deadline) { path in
            path == "/healthz" ? (200, "text/plain", Array("ok\n".utf8)) : (200, "text/plain", body)
        }
        server.start()
        return server
    }

    /// A connected TCP socket to 127.0.0.1:`port` whose reads give up after `timeout`.
    static func connect(_ port: Int, timeout: Int = 3) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func send(_ fd: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count
    }

    /// Everything the server sends until it closes (or the read timeout passes).
    static func readAll(_ fd: Int32) -> String {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func get(_ port: Int, _ path: String) throws -> String {
        let fd = try connect(port)
        defer { close(fd) }
        _ = send(fd, "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
        return readAll(fd)
    }

    /// Runs blocking socket code on a thread of its own: on Swift's cooperative pool (two threads
    /// here) it would stall every other test in the process while it waits.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    @Test func aTricklingClientDoesNotBlockTheHealthCheck() async throws {
        let server = try Self.server()
        defer { server.stop() }
        let answers = try await Self.blocking {
            let trickler = try Self.connect(server.port)
            defer { close(trickler) }
            _ = Self.send(trickler, "G")
            // One byte now and then, never the end of the head: the old server served only this
            // client until its 2 s read timeout, after every byte.
            var answers: [String] = []
            for byte in "ET /metrics HTTP/1.1\r\n" {
                answers.append(try Self.get(server.port, "/healthz"))
                guard Self.send(trickler, String(byte)) else { break }
            }
            return answers
        }
        #expect(!answers.isEmpty)
        for answer in answers { #expect(answer.hasPrefix("HTTP/1.1 200") && answer.hasSuffix("ok\n"), "\(answer)") }
    }

    @Test func aClientSlowerThanTheDeadlineIsCutOff() async throws {
        let server = try Self.server(deadline: .milliseconds(300))
        defer { server.stop() }
        let (cutOff, answered) = try await Self.blocking {
            let trickler = try Self.connect(server.port, timeout: 10)
            defer { close(trickler) }
            // Bytes keep coming, every 100 ms, so no per-read timeout would ever fire; the total
            // deadline does, and the server closes without an answer. The 30 s bound only guards
            // against a server that never cuts it off (100 × the deadline, for a box busy with builds).
            let giveUp = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < giveUp {
                guard Self.send(trickler, "G") else { return (true, false) }
                var pfd = pollfd(fd: trickler, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, 100) > 0 {
                    var byte: UInt8 = 0
                    return (true, recv(trickler, &byte, 1, 0) > 0)
                }
            }
            return (false, false)
        }
        #expect(cutOff)
        #expect(!answered, "the server answered a request it never got whole")
    }

    @Test func clientsOverTheLimitGetA503AndTheEndpointRecovers() async throws {
        let server = try Self.server(maxClients: 2, deadline: .milliseconds(500))
        defer { server.stop() }
        let (busy, answer) = try await Self.blocking {
            let idle = try (0..<2).map { _ in try Self.connect(server.port) }
            // Both slots are taken once the server has accepted them; the busy answer says so.
            var busy = ""
            for _ in 0..<50 where !busy.contains("503") {
                busy = try Self.get(server.port, "/healthz")
            }
            idle.forEach { close($0) }
            // The freed slots come back once their threads see the hang-up (at the latest the 500 ms
            // deadline): retry for a bounded time, not a count that a fast loop spends in microseconds.
            var answer = ""
            let until = Date().addingTimeInterval(5)
            while !answer.hasPrefix("HTTP/1.1 200") && Date() < until {
                answer = try Self.get(server.port, "/healthz")
                // A bounded poll's pace on a blocking thread (no event to await there), not a fixed wait.
                if !answer.hasPrefix("HTTP/1.1 200") { usleep(20_000) }
            }
            return (busy, answer)
        }
        #expect(busy.hasPrefix("HTTP/1.1 503") && busy.contains("too many open clients"), "\(busy)")
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
    }

    /// A client that sends its request and hangs up without reading: the server writes into a
    /// connection in CLOSE_WAIT, the client's kernel answers with RST, and the next write fails with
    /// EPIPE. A plain write() would raise SIGPIPE, whose default action ends the process (this test
    /// process included, so the default is put in place for the test).
    @Test func aClientHangingUpMidAnswerIsNoSIGPIPE() async throws {
        let previous = signal(SIGPIPE, SIG_DFL)
        defer { signal(SIGPIPE, previous) }
        let server = try Self.server(body: [UInt8](repeating: 0x61, count: 8 << 20))
        defer { server.stop() }
        let answer = try await Self.blocking {
            for _ in 0..<8 {
                let fd = try Self.connect(server.port)
                _ = Self.send(fd, "GET /metrics HTTP/1.1\r\n\r\n")
                close(fd)
            }
            // Still serving (once the hung-up clients' slots are free).
            var answer = ""
            for _ in 0..<50 where !answer.hasPrefix("HTTP/1.1 200") {
                answer = try Self.get(server.port, "/healthz")
            }
            return answer
        }
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
    }
}
