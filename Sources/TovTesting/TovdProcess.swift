import Daemon
import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A `tovd` child process for tests that need real signals (SIGKILL mid-batch, SIGTERM drains).
public final class TovdProcess: @unchecked Sendable {
    // @unchecked: Foundation.Process is not Sendable; it is started once in init and then only queried.
    public let process = Process()
    public let logPath: String
    /// Signalled when the process exits (the event `waitForExit` waits on), with its status.
    private let exited = WakeupSignal()
    private let exitStatus = Mutex<Int32?>(nil)

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
        process.terminationHandler = { [weak self] process in
            self?.exitStatus.withLock { $0 = process.terminationStatus }
            self?.exited.signal()
        }
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    public func kill() { Foundation.kill(pid, SIGKILL) }
    public func terminate() { Foundation.kill(pid, SIGTERM) }

    /// Waits for exit (the process's termination event) up to `timeout`; returns the exit status, or
    /// nil if it is still running.
    public func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        if let status = exitStatus.withLock({ $0 }) { return status }
        await exited.wait(timeout: timeout, on: .continuous)
        return exitStatus.withLock { $0 }
    }

    /// Whether the log gained `count` more lines containing `text` within `timeout` (a log line the
    /// daemon writes is an event a test can wait on: a retry made, a phase reached).
    public func logGains(_ count: Int, of text: String, timeout: Duration = .seconds(30)) async throws -> Bool {
        let before = occurrences(of: text)
        return try await TovTestDatabase.eventually(timeout: timeout) { self.occurrences(of: text) >= before + count }
    }

    /// How many times `text` occurs in the log so far.
    public func occurrences(of text: String) -> Int { log.components(separatedBy: text).count - 1 }

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
