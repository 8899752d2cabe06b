import EmbeddedPostgres
import Daemon
import Foundation
import Testing
import TovTesting

/// `tovd dev-db start --directory D`: the other commands run from the same working directory find
/// that cluster without DATABASE_URL, as `tovd dev-db --help` says.
@Suite("dev-db")
struct DevDBTests {
    /// Runs the built `tovd` in `directory` with no DATABASE_URL; returns its status and output.
    static func tovd(_ arguments: [String], in directory: URL) async throws -> (status: Int32, output: String) {
        let output = directory.appendingPathComponent("tovd-\(UUID().uuidString.prefix(8)).out")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = TovdProcess.executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var environment = ProcessInfo.processInfo.environment
        for name in ["DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "NOTIFY_SOCKET"] { environment.removeValue(forKey: name) }
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        // The event: the process's termination handler.
        let exited = WakeupSignal()
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        if process.isRunning { await exited.wait(timeout: .seconds(60), on: .continuous) }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        // A server that inherited Foundation's exit-notification socket kept `dev-db start` "running".
        guard !process.isRunning else { return (-1, text + "\n[still running after 60 s]") }
        return (process.terminationStatus, text)
    }

    @Test func aClusterStartedElsewhereIsFoundByTheOtherCommands() async throws {
        let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tovd-devdb-\(UUID().uuidString.prefix(8))")
        let work = root.appendingPathComponent("project"), clusterDirectory = root.appendingPathComponent("elsewhere/pg")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer {
            try? LocalCluster(directory: clusterDirectory.path).stop(mode: .immediate)
            try? FileManager.default.removeItem(atPath: LocalCluster(directory: clusterDirectory.path).home)
            try? FileManager.default.removeItem(at: root)
        }

        let start = try await Self.tovd(["dev-db", "start", "--directory", clusterDirectory.path], in: work)
        #expect(start.status == 0, "\(start.output)")
        let conninfo = start.output.trimmingCharacters(in: .whitespacesAndNewlines)

        // No DATABASE_URL, no --directory: every command finds the cluster in `elsewhere/pg`.
        let migrate = try await Self.tovd(["migrate", "up"], in: work)
        #expect(migrate.status == 0, "\(migrate.output)")
        let validate = try await Self.tovd(["migrate", "validate"], in: work)
        #expect(validate.status == 0, "\(validate.output)")
        let url = try await Self.tovd(["dev-db", "url"], in: work)
        #expect(url.status == 0 && url.output.trimmingCharacters(in: .whitespacesAndNewlines) == conninfo, "\(url.output)")
        #expect(!FileManager.default.fileExists(atPath: work.appendingPathComponent(".tovd/pg").path), "a second cluster was created")

        let stop = try await Self.tovd(["dev-db", "stop"], in: work)
        #expect(stop.status == 0, "\(stop.output)")
        #expect(!LocalCluster(directory: clusterDirectory.path).isRunning)
        let status = try await Self.tovd(["dev-db", "status"], in: work)
        #expect(status.output.contains("not running (\(LocalCluster(directory: clusterDirectory.path).directory))"), "\(status.output)")
    }
}
