import ArgumentParser
import EmbeddedPostgres
import Foundation

extension Tovd {
    struct DevDB: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dev-db",
            abstract: "Run a private PostgreSQL cluster (in ./.tovd/pg unless told otherwise) for trying tovd without a server.",
            discussion: """
                The cluster listens only on a unix socket inside its directory (no TCP), trusts local \
                connections, and runs as the `postgres` OS user when tovd runs as root (PostgreSQL \
                refuses root). `start` records the cluster's directory in ./.tovd/dev-db, so every other \
                tovd command run from this directory uses that cluster when DATABASE_URL is unset, and \
                `stop`, `url` and `status` without --directory act on it; the last `start` wins.
                  start   initialise (first time) and start it, print its conninfo
                  stop    stop it (data stays)
                  url     print its conninfo
                  status  say whether it runs
                """)

        enum Action: String, ExpressibleByArgument, CaseIterable { case start, stop, url, status }

        @Argument(help: "start, stop, url or status.") var action: Action
        @Option(help: "Cluster directory [the last one started from here, else ./.tovd/pg].") var directory: String?

        func run() throws {
            let cluster = directory.map { LocalCluster(directory: $0) } ?? LocalCluster.current()
            switch action {
            case .start:
                let conninfo = try cluster.start()
                try cluster.makeCurrent()
                print(conninfo)
            case .stop:
                try cluster.stop(mode: .fast)
                print("stopped")
            case .url:
                guard cluster.isRunning else { throw CLIError("the dev cluster in \(cluster.directory) is not running: `tovd dev-db start`") }
                print(cluster.conninfo)
            case .status:
                print(cluster.isRunning ? "running in \(cluster.directory): \(cluster.conninfo)" : "not running (\(cluster.directory))")
            }
        }
    }
}
