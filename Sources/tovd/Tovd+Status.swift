import ArgumentParser
import Daemon
import Foundation

extension Tovd {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what tov.status shows: pool, scoring progress, model and selection versions.",
            discussion: "--json prints one object with at least pool_rows, pending, rejected, selected, zval_version and model_version.")

        @Flag(help: "Print one JSON object instead of text.") var json = false
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let connection = try await database.connect(applicationName: "tovd status")
            defer { connection.close() }
            try await Migrator().validate(on: connection)
            let report = try await StatusReport.load(on: connection)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print(report.humanReadable)
            }
        }
    }
}
