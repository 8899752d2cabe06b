import ArgumentParser
import Foundation
import Daemon
import PQ

extension Tovd {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create, upgrade, revert or check the tov schema.",
            discussion: """
                Migrations are numbered SQL files (migrations/NNN_name.up.sql and .down.sql) built into \
                this binary. Concurrent runs are safe: they serialise on an advisory lock.
                  up [N]     apply all migrations (or up to version N)
                  down [N]   revert the newest N migrations (default 1)
                  list       show every migration and when it was applied
                  validate   exit 0 only if the schema is exactly at this build's version, \
                1 if it is older (run `tovd migrate up`), 3 if it is newer (upgrade tovd); \
                `tovd run` makes the same check and exits the same way
                """)

        enum Action: String, ExpressibleByArgument, CaseIterable { case up, down, list, validate }

        @Argument(help: "up, down, list or validate.") var action: Action
        @Argument(help: "up: target version; down: how many to revert.") var count: Int?
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let connection = try await database.connect(applicationName: "tovd migrate")
            defer { connection.close() }
            do {
                try await perform(on: connection)
            } catch let error as DaemonError where error.code == .schemaTooNew {
                // Same status as `tovd run`, so scripts and units can tell "upgrade tovd" from other failures.
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
                throw ExitCode(Tovd.exitStatus(for: error))
            }
        }

        private func perform(on connection: Connection) async throws {
            let migrator = Migrator()
            switch action {
            case .up:
                let applied = try await migrator.up(on: connection, to: count)
                print(applied.isEmpty ? "schema is up to date at version \(migrator.latestVersion)"
                                      : "applied \(applied.map(String.init).joined(separator: ", ")); schema at version \(try await migrator.currentVersion(on: connection))")
            case .down:
                let reverted = try await migrator.down(on: connection, steps: count ?? 1)
                print(reverted.isEmpty ? "nothing to revert" : "reverted \(reverted.map(String.init).joined(separator: ", ")); schema at version \(try await migrator.currentVersion(on: connection))")
            case .list:
                for entry in try await migrator.list(on: connection) {
                    let version = String(format: "%03d", entry.migration.version)
                    print("\(version)  \(entry.migration.name.padding(toLength: 28, withPad: " ", startingAt: 0))  \(entry.appliedAt ?? "not applied")")
                }
            case .validate:
                try await migrator.validate(on: connection)
                print("schema at version \(migrator.latestVersion): ok")
            }
        }
    }
}
