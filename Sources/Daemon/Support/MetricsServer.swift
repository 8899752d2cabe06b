import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 server for `/metrics` (Prometheus text format) and `/healthz`.
///
/// One accept thread hands each client to a thread of its own, at most ``maxClients`` at a time, and
/// every client gets ``requestDeadline`` in total from accept to the last byte written: a client that
/// trickles its request, or never reads the answer, costs one slot for that long and never delays a
/// health check. Sockets are non-blocking and every `send` carries `MSG_NOSIGNAL`, so a client that
/// hangs up mid-answer is an error on that socket, never a SIGPIPE for the daemon.
///
/// Hand-written rather than FlyingFox (swhitty/FlyingFox 0.27.1): FlyingFox serves clients
/// concurrently and avoids SIGPIPE too, but bounds neither the number of connections nor the time a
/// request may take to arrive, so it would still need this code around it, and it adds about 12,000
/// lines to every clean CI build (docs/reliability.md has the measured cost). Scrape traffic is a
/// request every few seconds. Binds to 127.0.0.1 unless told otherwise.
public final class MetricsServer: Sendable {
    public typealias Handler = @Sendable (_ path: String) -> (status: Int, contentType: String, body: [UInt8])

    private let listenFD: Int32
    public let port: Int
    private let handler: Handler
    /// Clients served at the same time; one more is told 503 and closed at once.
    public let maxClients: Int
    /// From accept to the last byte of the answer, per client.
    public let requestDeadline: Duration
    private struct State {
        var activeClients = 0
        var stopped = false
    }
    private let state = Mutex(State())

    /// Binds `host:port` (port 0 picks a free port; see ``port``).
    public init(host: String = "127.0.0.1", port: Int, maxClients: Int = 16, requestDeadline: Duration = .seconds(2),
                handler: @escaping Handler) throws {
        self.handler = handler
        self.maxClients = maxClients
        self.requestDeadline = requestDeadline
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DaemonError(.config, "metrics: cannot create a socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw DaemonError(.config, "metrics: \(host) is not an IPv4 address; use e.g. 127.0.0.1")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw DaemonError(.config, "metrics: cannot listen on \(host):\(port): \(reason); pick another --metrics-port or 0 to disable")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        self.listenFD = fd
    }

    public func start() {
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "tovd-metrics"
        thread.start()
    }

    /// Stops accepting; the accept loop ends when the listening socket is shut down. Clients being
    /// served finish within their deadline.
    public func stop() {
        let wasStopped = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return state.stopped
        }
        guard !wasStopped else { return }
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                if state.withLock({ $0.stopped }) { return }
                // Out of descriptors or memory, or a client that reset before we took it: none of
                // these ends the endpoint. Pause briefly so a full descriptor table does not spin.
                if errno != EINTR && errno != ECONNABORTED { usleep(50_000) }
                continue
            }
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            let deadline = ContinuousClock.now + requestDeadline
            let admitted = state.withLock { state -> Bool in
                guard state.activeClients < maxClients else { return false }
                state.activeClients += 1
                return true
            }
            guard admitted else {
                // Best effort and never blocking: the socket buffer of a fresh connection has room.
                _ = send(client, Self.busy, Self.busy.count, Int32(MSG_NOSIGNAL))
                close(client)
                continue
            }
            let thread = Thread { [self] in
                serve(client, until: deadline)
                close(client)
                state.withLock { $0.activeClients -= 1 }
            }
            thread.name = "tovd-metrics-client"
            thread.start()
        }
    }

    private static let busy = Array("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 22\r\nConnection: close\r\n\r\ntoo many open clients\n".utf8)

    /// Milliseconds left before `deadline` (0 when passed), for poll().
    private static func remaining(_ deadline: ContinuousClock.Instant) -> Int32 {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { return 0 }
        return Int32(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000, Int64(Int32.max)))
    }

    /// Waits until `fd` is ready for `events` or the deadline passes; false on timeout or error.
    private static func wait(_ fd: Int32, _ events: Int32, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let timeout = remaining(deadline)
            guard timeout > 0 else { return false }
            var pfd = pollfd(fd: fd, events: Int16(events), revents: 0)
            let n = poll(&pfd, 1, timeout)
            if n < 0 && errno == EINTR { continue }
            return n > 0 && pfd.revents & Int16(POLLERR | POLLNVAL) == 0
        }
    }

    func serve(_ fd: Int32, until deadline: ContinuousClock.Instant) {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        // Read the request head only; a scrape has no body. Cap it so nothing can make us buffer much.
        while request.count < 8192 {
            guard Self.wait(fd, Int32(POLLIN), until: deadline) else { return }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { continue }
            if n <= 0 { break }
            request.append(contentsOf: buffer[0..<n])
            if request.count >= 4, request.suffix(4) == [13, 10, 13, 10] { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let response: (status: Int, contentType: String, body: [UInt8])
        if parts.count >= 2, parts[0] == "GET" {
            let path = String(parts[1].split(separator: "?", maxSplits: 1).first ?? "")
            response = handler(path)
        } else {
            response = (405, "text/plain", Array("only GET is supported\n".utf8))
        }
        let reason = [200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][response.status] ?? "OK"
        let head = "HTTP/1.1 \(response.status) \(reason)\r\nContent-Type: \(response.contentType)\r\nContent-Length: \(response.body.count)\r\nConnection: close\r\n\r\n"
        var out = Array(head.utf8)
        out.append(contentsOf: response.body)
        var sent = 0
        while sent < out.count {
            guard Self.wait(fd, Int32(POLLOUT), until: deadline) else { return }
            let n = out.withUnsafeBytes { send(fd, $0.baseAddress! + sent, out.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { continue }
            if n <= 0 { return }
            sent += n
        }
    }
}
