import ArgumentParser
import Daemon
import Foundation

extension Tovd {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the current selection (optionally with Z_val: the recommended training set) as JSONL.",
            discussion: """
                Each line: {"set", "id", "prompt", "response", "source", "meta", "score", "reason", \
                "length_bin", "selection_version"}; "set" is "selected" (a row of tov.selected) or \
                "validation" (a row of tov.validation, whose selection fields are null). Selected rows \
                come first, then Z_val rows, each in id order; "source" is the row's own (tov.candidates.source \
                or tov.validation.source). Every selected row is written, as --selected writes it, even two \
                with the same text; a Z_val row is left out when its (prompt, response) repeats a selected row \
                or an earlier Z_val row. The whole export is read in one statement, so it is one selection \
                version and one Z_val even while the daemon switches to new ones.
                  tovd export --selected > selected.jsonl
                  tovd export --with-validation -o train.jsonl     # what docs/evaluation.md recommends
                """)

        @Flag(help: "Export tov.selected.") var selected = false
        @Flag(help: "Export tov.selected followed by the Z_val rows of tov.validation that repeat no selected or earlier Z_val row (implies --selected).")
        var withValidation = false
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?
        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            guard selected || withValidation else { throw ValidationError("say what to export: --selected or --with-validation") }
        }

        func run() async throws {
            let connection = try await database.connect(applicationName: "tovd export")
            defer { connection.close() }
            let handle: FileHandle
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: nil) , let h = FileHandle(forWritingAtPath: output) else {
                    throw CLIError("cannot write \(output): check the directory exists and is writable")
                }
                handle = h
            } else {
                handle = .standardOutput
            }
            let progress = ProgressBar("export", total: nil)
            var rows = 0
            var buffer: [UInt8] = []
            try await connection.copyOut(withValidation ? TransferQueries.selectedWithValidationCopyOut : TransferQueries.selectedCopyOut) { chunk in
                buffer.append(contentsOf: CopyText.unescape(chunk))
                rows += chunk.lazy.filter { $0 == 0x0A }.count
                if buffer.count > 1 << 20 {
                    handle.write(Data(buffer))
                    buffer.removeAll(keepingCapacity: true)
                }
                progress.update(rows)
            }
            handle.write(Data(buffer))
            if output != nil { try handle.close() }
            progress.finish(rows)
        }
    }
}
