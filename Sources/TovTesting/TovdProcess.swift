import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A `tovd` child process for tests that need real signals (SIGKILL mid-batch, SIGTERM drains).
public final class TovdProcess: @unchecked Sendable {
    // @unchecked: Foundation.Process is not Sendable; it is started once in init and then only queried.
    public let process = Process()
    public let logPath: String

    /// The `tovd` built next to the test bundle (`swift build --build-tests` builds both).
    public static var executable: URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tovd"),
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("tovd"),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/tovd"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates.last!
    }

    /// Starts `tovd <arguments>` with `DATABASE_URL=conninfo`; output goes to a log file.
    public init(_ arguments: [String], conninfo: String, environment: [String: String] = [:]) throws {
        logPath = NSTemporaryDirectory() + "tovd-test-\(UUID().uuidString).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!
        process.executableURL = Self.executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["DATABASE_URL"] = conninfo
        env.removeValue(forKey: "NOTIFY_SOCKET")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    public func kill() { Foundation.kill(pid, SIGKILL) }
    public func terminate() { Foundation.kill(pid, SIGTERM) }

    /// Waits for exit up to `timeout`; returns the exit status, or nil if it is still running.
    public func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// The port of /metrics and /healthz when started with `--metrics-port 0` (read from the log).
    public var metricsPort: Int? {
        guard let range = log.range(of: #"address=127\.0\.0\.1:(\d+)"#, options: .regularExpression) else { return nil }
        return Int(log[range].split(separator: ":").last!)
    }

    /// GET `path` on the metrics endpoint: (HTTP status, body), or nil when it does not answer.
    public func httpGet(_ path: String) async -> (status: Int, body: String)? {
        guard let port = metricsPort, let url = URL(string: "http://127.0.0.1:\(port)\(path)") else { return nil }
        var request = URLRequest(url: url)
        request.timeoutInterval = 5
        guard let (data, response) = try? await URLSession.shared.data(for: request) else { return nil }
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// A counter or gauge from /metrics (summed over label sets), or nil when it does not answer.
    public func metric(_ name: String) async -> Double? {
        guard let (_, body) = await httpGet("/metrics") else { return nil }
        var total = 0.0
        for line in body.split(separator: "\n") where line.hasPrefix(name + " ") || line.hasPrefix(name + "{") {
            total += Double(line.split(separator: " ").last!) ?? 0
        }
        return total
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning { kill() }
    }
}
