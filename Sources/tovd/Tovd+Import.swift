import ArgumentParser
import Evaluation
import Foundation
import PQ

extension Tovd {
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a JSONL file into tov.candidates (the pool) or tov.validation (Z_val) with COPY.",
            discussion: """
                Each line is {"prompt": ..., "response": ...} or {"messages": [{"role", "content"}, ...]} \
                (prompt = the turns before the last assistant turn, response = that turn). "source" is kept; \
                every other key goes to meta. Bad lines are reported with their line number and skipped; \
                the rest of the file is imported. With --strict, any bad line aborts before anything is written.
                  tovd import pool.jsonl
                  tovd import zval.jsonl --into validation
                """)

        enum Table: String, ExpressibleByArgument, CaseIterable { case candidates, validation }

        @Argument(help: "The JSONL file.") var file: String
        @Option(help: "candidates (default) or validation.") var into: Table = .candidates
        @Flag(help: "Fail on the first bad line instead of skipping it.") var strict = false
        @Option(help: "Rows per COPY (one transaction each).") var chunkRows = 5000
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let url = URL(fileURLWithPath: file)
            guard FileManager.default.isReadableFile(atPath: url.path) else {
                throw CLIError("cannot read \(file): check the path")
            }
            let total = try Self.countLines(url)
            if strict {
                for case .failure(let error) in try JSONLReader(url: url) {
                    throw CLIError("\(file): \(error) (nothing was imported; drop --strict to skip bad lines)")
                }
            }
            let connection = try await database.connect(applicationName: "tovd import")
            defer { connection.close() }

            let progress = ProgressBar("import \(url.lastPathComponent)", total: total, unit: "lines")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            var imported = 0, bad = 0, lines = 0
            var chunk: [UInt8] = []
            var chunkCount = 0
            let columns = into == .candidates ? "(prompt, response, source, meta)" : "(prompt, response, meta)"
            func flush() async throws {
                guard chunkCount > 0 else { return }
                let data = chunk
                imported += try await connection.copyIn("COPY tov.\(into.rawValue) \(columns) FROM STDIN") { send in
                    try await send(data)
                }
                chunk.removeAll(keepingCapacity: true)
                chunkCount = 0
            }
            for result in try JSONLReader(url: url) {
                lines += 1
                switch result {
                case .failure(let error):
                    bad += 1
                    if bad <= 20 { FileHandle.standardError.write(Data("\n\(file):\(error)".utf8)) }
                case .success(let example):
                    if example.prompt.utf8.contains(0) || example.response.utf8.contains(0) {
                        bad += 1
                        if bad <= 20 { FileHandle.standardError.write(Data("\n\(file):line \(lines): contains a NUL character, which PostgreSQL text cannot store".utf8)) }
                        continue
                    }
                    CopyText.appendEscaped(example.prompt.utf8, to: &chunk)
                    chunk.append(0x09)
                    CopyText.appendEscaped(example.response.utf8, to: &chunk)
                    if into == .candidates {
                        chunk.append(0x09)
                        if let source = example.source { CopyText.appendEscaped(source.utf8, to: &chunk) } else { chunk += CopyText.null }
                    }
                    chunk.append(0x09)
                    if let meta = example.meta, !meta.isEmpty {
                        CopyText.appendEscaped(try encoder.encode(meta), to: &chunk)
                    } else {
                        chunk += CopyText.null
                    }
                    chunk.append(0x0A)
                    chunkCount += 1
                    if chunkCount >= chunkRows { try await flush() }
                }
                progress.update(lines)
            }
            try await flush()
            progress.finish(lines)
            if bad > 20 { FileHandle.standardError.write(Data("\n... and \(bad - 20) more bad lines".utf8)) }
            print("imported \(imported) rows into tov.\(into.rawValue); skipped \(bad) bad lines")
        }

        static func countLines(_ url: URL) throws -> Int {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            var count = 0
            while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
                count += data.reduce(0) { $1 == 0x0A ? $0 + 1 : $0 }
            }
            return count
        }
    }
}
