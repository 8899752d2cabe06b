import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// The read-only commands a login with only tov_reader may run work for it (`tovd status` used to
/// read tov_migrate, which no role but the owner may read); one that needs the pool says so.
@Suite("Read-only role")
struct ReadOnlyRoleTests {
    @Test func readOnlyCommandsWorkAsTovReader() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let login = "reader_\(UUID().uuidString.prefix(8).lowercased())"
            try await c.simpleQuery("CREATE ROLE \(login) LOGIN IN ROLE tov_reader")
            defer { Task { try? await c.simpleQuery("DROP OWNED BY \(login); DROP ROLE IF EXISTS \(login)") } }
            let ids = try await TovTestDatabase.insertCandidates(3, on: c, prefix: "a row a reader reads")
            let reader = conninfo + " user=\(login)"

            let explain = try TovdProcess(["explain", "\(ids[0])"], conninfo: reader)
            #expect(await explain.waitForExit() == 1)
            #expect(explain.log.contains("tov_reader may not"), "\(explain.log)")
            for arguments in [["status"], ["status", "--json"], ["status", "--watch", "--interval", "0.2"], ["export", "--selected"], ["export", "--with-validation"],
                              ["target", "list"], ["target", "list", "--json"], ["export", "--target", "default", "--selected"],
                              ["export", "--selected", "--output", NSTemporaryDirectory() + "\(login).jsonl",
                               "--manifest", NSTemporaryDirectory() + "\(login).manifest.json"]] {
                let run = try TovdProcess(arguments, conninfo: reader)
                if arguments.contains("--watch") {
                    // --watch runs until interrupted: a few refreshes, then Ctrl-C.
                    let refreshed = try await TovTestDatabase.eventually(timeout: .seconds(30)) {
                        run.log.components(separatedBy: "pool ").count >= 3
                    }
                    #expect(refreshed && run.isRunning, "\(run.log)")
                    kill(run.pid, SIGINT)
                    _ = await run.waitForExit()
                    continue
                }
                let status = await run.waitForExit()
                #expect(status == 0, "tovd \(arguments.joined(separator: " ")) as tov_reader: \(run.log)")
                #expect(!run.log.contains("permission denied"), "\(run.log)")
            }
            // The reader may not write or read model internals.
            let r = try await Connection.connect(reader)
            defer { r.close() }
            await #expect(throws: PQError.self) { try await r.execute("INSERT INTO tov.training_requests (kind) VALUES ('rebase')") }
            await #expect(throws: PQError.self) { try await r.query("SELECT data FROM tov.checkpoints LIMIT 1") }
        }
    }
}
