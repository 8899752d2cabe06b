import ArgumentParser
import Daemon
import EmbeddedPostgres
import Foundation
import PQ

/// `--database-url`, shared by every subcommand that talks to Postgres.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: ArgumentHelp(
        "libpq connection string or postgresql:// URI.",
        discussion: "Defaults to $DATABASE_URL, then to the cluster the last `tovd dev-db start` from this directory started (./.tovd/pg unless --directory said otherwise).",
        valueName: "conninfo"))
    var databaseURL: String?

    /// The conninfo to use, or an error that says how to get one.
    func resolve() throws -> String {
        SystemdCredential.applyPassword()
        if let databaseURL, !databaseURL.isEmpty { return databaseURL }
        if let env = ProcessInfo.processInfo.environment["DATABASE_URL"], !env.isEmpty { return env }
        let cluster = LocalCluster.current()
        if cluster.isRunning { return cluster.conninfo }
        throw ValidationError("no database: pass --database-url, set DATABASE_URL, or run `tovd dev-db start` for a private one")
    }

    func connect(applicationName: String = "tovd") async throws -> Connection {
        let conninfo = try resolve()
        do {
            return try await Connection.connect(conninfo, applicationName: applicationName)
        } catch let error as PQError {
            throw CLIError("cannot connect to the database: \(error)\nCheck --database-url / DATABASE_URL and that the server is up (`tovd dev-db start` for a local one).")
        }
    }
}

/// An error whose text is meant for the person at the terminal.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
