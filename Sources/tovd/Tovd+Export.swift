import ArgumentParser
import Foundation

extension Tovd {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the current selection as JSONL (one object per row, ordered by id).",
            discussion: """
                Each line: {"id", "prompt", "response", "source", "meta", "score", "reason", \
                "length_bin", "selection_version"}. The whole export is read in one statement, so it is \
                one selection version even while the daemon switches to a new one.
                  tovd export --selected > selected.jsonl
                """)

        @Flag(help: "Export tov.selected (the only export there is today; kept explicit for scripts).") var selected = false
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?
        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            guard selected else { throw ValidationError("say what to export: --selected") }
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
            try await connection.copyOut("""
                COPY (SELECT json_build_object('id', id, 'prompt', prompt, 'response', response, 'source', source,
                                               'meta', meta, 'score', score, 'reason', reason, 'length_bin', length_bin,
                                               'selection_version', selection_version)
                      FROM tov.selected ORDER BY id) TO STDOUT
                """) { chunk in
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
