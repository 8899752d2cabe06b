import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// Every read-only command works for a login that has only tov_reader, as docs/operations.md says
/// (`tovd status` used to read tov_migrate, which no role but the owner may read).
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

            for arguments in [["status"], ["status", "--json"], ["explain", "\(ids[0])"], ["export", "--selected"]] {
                let run = try TovdProcess(arguments, conninfo: reader)
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
