import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// The exit statuses the systemd units rely on, from the built `tovd` against a real database:
/// 3 when the schema is newer than the binary (RestartPreventExitStatus=3 ends the restart loop),
/// 1 when it is older (systemd retries until `tovd migrate up` has run), 0 when it matches.
@Suite("Exit codes and systemd units")
struct ExitCodeTests {
    static func tovd(_ arguments: [String], _ conninfo: String) async throws -> (status: Int32?, log: String) {
        let process = try TovdProcess(arguments, conninfo: conninfo)
        return (await process.waitForExit(timeout: .seconds(60)), process.log)
    }

    @Test func aNewerSchemaExits3FromValidateAndRun() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            #expect(try await Self.tovd(["migrate", "validate"], conninfo).status == 0)

            try await connection.execute("INSERT INTO tov_migrate.versions (version, name) VALUES ($1, 'from_a_newer_tovd')",
                                         [Migrator().latestVersion + 1])
            let validate = try await Self.tovd(["migrate", "validate"], conninfo)
            #expect(validate.status == 3, "\(validate.log)")
            #expect(validate.log.contains("newer than this tovd knows"), "\(validate.log)")
            let up = try await Self.tovd(["migrate", "up"], conninfo)
            #expect(up.status == 3, "\(up.log)")

            let run = try await Self.tovd(["run", "--metrics-port=-1"], conninfo)
            #expect(run.status == 3, "\(run.log)")
            #expect(run.log.contains("systemd does not restart it"), "\(run.log)")
        }
    }

    @Test func anOlderSchemaExits1FromValidateAndRun() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let connection = try await Connection.connect(conninfo)
            defer { connection.close() }
            try await Migrator().down(on: connection, steps: 1)

            let validate = try await Self.tovd(["migrate", "validate"], conninfo)
            #expect(validate.status == 1, "\(validate.log)")
            #expect(validate.log.contains("run `tovd migrate up`"), "\(validate.log)")
            let run = try await Self.tovd(["run", "--metrics-port=-1"], conninfo)
            #expect(run.status == 1, "\(run.log)")
        }
    }

    static let units = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("systemd")

    /// RestartPreventExitStatus= applies to the main process only: a schema check in ExecStartPre
    /// would turn exit 3 into a restart every RestartSec, forever. Both units also carry the
    /// LoadCredential line docs/operations.md tells operators to uncomment.
    @Test(arguments: ["tovd.service", "tovd@.service"])
    func theUnitLetsExit3StopIt(_ name: String) throws {
        let text = try String(contentsOf: Self.units.appendingPathComponent(name), encoding: .utf8)
        let directives = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(!directives.contains { $0.hasPrefix("ExecStartPre=") }, "\(name) runs a check outside the main process")
        #expect(directives.contains("ExecStart=/usr/local/bin/tovd run"))
        #expect(directives.contains("Restart=on-failure") && directives.contains("RestartPreventExitStatus=3"))
        #expect(text.contains("\n#LoadCredential=db-password:/etc/tovd/db-password\n"), "\(name) lacks the LoadCredential line")
    }

    static let systemdAnalyze = "/usr/bin/systemd-analyze"

    /// `systemd-analyze verify` accepts both units as shipped, and with the LoadCredential line
    /// uncommented (ExecStart pointed at the built binary, which verify requires to exist).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: systemdAnalyze)), arguments: ["tovd.service", "tovd@.service"])
    func systemdAcceptsTheUnit(_ name: String) throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tovd-units-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = try String(contentsOf: Self.units.appendingPathComponent(name), encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/tovd", with: TovdProcess.executable.path)
            .replacingOccurrences(of: "\n#LoadCredential=", with: "\nLoadCredential=")
        let unit = directory.appendingPathComponent(name.replacingOccurrences(of: "@.", with: "@1."))
        try text.write(to: unit, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.systemdAnalyze)
        process.arguments = ["verify", unit.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let message = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && !message.contains(name.replacingOccurrences(of: "@.", with: "@1.")), "\(message)")
    }
}
