import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 server for `/metrics` (Prometheus text format) and `/healthz`.
///
/// It runs on one dedicated thread with blocking sockets: scrape traffic is a request every few
/// seconds, so a full HTTP stack (and its build time) buys nothing here. Binds to 127.0.0.1 unless
/// told otherwise.
public final class MetricsServer: @unchecked Sendable {
    public typealias Handler = @Sendable (_ path: String) -> (status: Int, contentType: String, body: [UInt8])

    private let listenFD: Int32
    public let port: Int
    private let handler: Handler
    private var thread: Thread?

    /// Binds `host:port` (port 0 picks a free port; see ``port``).
    public init(host: String = "127.0.0.1", port: Int, handler: @escaping Handler) throws {
        self.handler = handler
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
        guard bound == 0, listen(fd, 16) == 0 else {
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
        self.thread = thread
        thread.start()
    }

    /// Stops accepting; the accept loop ends when the listening socket is shut down.
    public func stop() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            serve(client)
            close(client)
        }
    }

    private func serve(_ fd: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        // Read the request head only; a scrape has no body. Cap it so nothing can make us buffer much.
        while request.count < 8192 {
            let n = read(fd, &buffer, buffer.count)
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
            let n = out.withUnsafeBytes { write(fd, $0.baseAddress! + sent, out.count - sent) }
            if n <= 0 { break }
            sent += n
        }
    }
}
