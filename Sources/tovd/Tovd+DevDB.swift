import ArgumentParser
import EmbeddedPostgres
import Foundation

extension Tovd {
    struct DevDB: ParsableCommand {
        static let defaultDirectory = ".tovd/pg"

        static let configuration = CommandConfiguration(
            commandName: "dev-db",
            abstract: "Run a private PostgreSQL cluster in ./.tovd/pg for trying tovd without a server.",
            discussion: """
                The cluster listens only on a unix socket inside its directory (no TCP), trusts local \
                connections, and runs as the `postgres` OS user when tovd runs as root (PostgreSQL \
                refuses root). Other tovd commands find it automatically when DATABASE_URL is unset.
                  start   initialise (first time) and start it, print its conninfo
                  stop    stop it (data stays)
                  url     print its conninfo
                  status  say whether it runs
                """)

        enum Action: String, ExpressibleByArgument, CaseIterable { case start, stop, url, status }

        @Argument(help: "start, stop, url or status.") var action: Action
        @Option(help: "Cluster directory.") var directory = DevDB.defaultDirectory

        func run() throws {
            let cluster = LocalCluster(directory: directory)
            switch action {
            case .start:
                print(try cluster.start())
            case .stop:
                try cluster.stop(mode: .fast)
                print("stopped")
            case .url:
                guard cluster.isRunning else { throw CLIError("the dev cluster in \(directory) is not running: `tovd dev-db start`") }
                print(cluster.conninfo)
            case .status:
                print(cluster.isRunning ? "running: \(cluster.conninfo)" : "not running")
            }
        }
    }
}
