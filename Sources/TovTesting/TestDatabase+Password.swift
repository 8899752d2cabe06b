import EmbeddedPostgres
import Foundation
import PQ

extension TestDatabase {
    /// Makes `role` a login with `password` (SCRAM) in a private cluster and has the server demand that
    /// password from it on the socket (the cluster trusts every other local login). Returns once the
    /// reloaded pg_hba.conf is in force, that is once a wrong password is refused.
    public static func requirePassword(role: String, password: String, in cluster: LocalCluster, admin conninfo: String) async throws {
        let admin = try await Connection.connect(conninfo)
        defer { admin.close() }
        try await admin.simpleQuery("SET password_encryption = 'scram-sha-256'")
        let create = try await admin.query("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text) AS statement", [role, password])
        try await admin.simpleQuery(try create.first!.get(String.self, "statement"))
        let hba = cluster.home + "/data/pg_hba.conf"
        let original = try String(contentsOfFile: hba, encoding: .utf8)
        try ("local all \(role) scram-sha-256\n" + original).write(toFile: hba, atomically: false, encoding: .utf8)
        try await admin.query("SELECT pg_reload_conf()")
        let probe = "host=\(cluster.home) port=\(cluster.port) user=\(role) dbname=postgres password=not-the-password"
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            do {
                try await Connection.connect(probe).close()
            } catch let error as PQError where error.code == .connectionRejected {
                return
            } catch {}
            try await Task.sleep(for: .milliseconds(50))
        }
        throw PQError(.connectionFailed, "pg_hba.conf of \(cluster.home) did not take effect within 10 s; see \(cluster.logFile)")
    }
}
