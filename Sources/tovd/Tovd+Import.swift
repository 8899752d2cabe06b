import ArgumentParser
import Daemon
import Foundation
import JSONL
import PQ

extension Tovd {
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a JSONL file into tov.candidates (the pool) or tov.validation (Z_val) with COPY.",
            discussion: """
                Each line is {"prompt": ..., "response": ...} or {"messages": [{"role", "content"}, ...]} \
                (prompt = the turns before the last assistant turn, response = that turn). "source" is kept; \
                every other key goes to meta, whose numbers are stored exactly as written (jsonb numeric: \
                18446744073709551615 and 1e-400 stay themselves). Bad lines (also a NUL character anywhere, \
                which PostgreSQL text and jsonb cannot store, or a number beyond PostgreSQL's numeric) are \
                reported with their line number and skipped; the rest of the \
                file is imported, one transaction per --chunk-rows rows. With --strict the whole file is one \
                transaction: any bad line aborts it and nothing is written. A file that cannot be read to \
                its end is an error (exit status 1), never taken for a shorter file.
                  tovd import pool.jsonl
                  tovd import zval.jsonl --into validation
                  tovd import drop-zval.jsonl --into validation --target drop    # a target's Z_val (tovd target add)
                """)

        enum Table: String, ExpressibleByArgument, CaseIterable { case candidates, validation }

        @Argument(help: "The JSONL file.") var file: String
        @Option(help: "candidates (default) or validation.") var into: Table = .candidates
        @Option(help: ArgumentHelp("With --into validation: the target whose Z_val the rows are (tov.validation.target; default: default).",
                                   valueName: "name"))
        var target: String?
        @Flag(help: "Import all of the file or, on the first bad line, nothing.") var strict = false
        @Option(help: "Rows per COPY (one transaction each, unless --strict).") var chunkRows = 5000
        @OptionGroup var database: DatabaseOptions

        /// The first bad line under --strict; it rolls the one transaction back.
        struct StrictAbort: Error { var line: JSONLLineError }

        func validate() throws {
            if target != nil && into != .validation {
                throw ValidationError("--target names whose Z_val the rows are: use it with --into validation (the pool is shared by every target)")
            }
        }

        func run() async throws {
            let url = URL(fileURLWithPath: file)
            guard FileManager.default.isReadableFile(atPath: url.path) else {
                throw CLIError("cannot read \(file): check the path")
            }
            let total: Int
            do {
                total = try Self.countLines(url)
            } catch {
                throw CLIError("cannot read \(file): \((error as NSError).localizedDescription); nothing was imported")
            }
            let connection = try await database.connect(applicationName: "tovd import")
            defer { connection.close() }
            if let target {
                // tov_writer may insert Z_val but not read tov.targets: then the foreign key below names it.
                do { _ = try await requireTarget(target, on: connection) } catch let error as PQError where error.sqlState == .insufficientPrivilege {}
            }

            let progress = ProgressBar("import \(url.lastPathComponent)", total: total, unit: "lines")
            var tally = Tally()
            do {
                if strict {
                    try await connection.transaction { tx in try await load(url, on: tx, progress: progress, tally: &tally) }
                } else {
                    try await load(url, on: connection, progress: progress, tally: &tally)
                }
            } catch let abort as StrictAbort {
                throw CLIError("\(file):\(abort.line) (nothing was imported; drop --strict to skip bad lines)")
            } catch let error as CLIError {
                throw CLIError(strict ? "\(error) (nothing was imported)" : "\(error); the \(tally.imported) rows before it were imported")
            }
            progress.finish(tally.lines)
            if tally.bad > 20 { FileHandle.standardError.write(Data("\n... and \(tally.bad - 20) more bad lines".utf8)) }
            print("imported \(tally.imported) rows into tov.\(into.rawValue)" + (target.map { " for target \($0)" } ?? "")
                + "; skipped \(tally.bad) bad lines")
        }

        struct Tally { var imported = 0, bad = 0, lines = 0 }

        /// COPYs every good line of `url` in chunks of `chunkRows`; reports and skips bad lines, or
        /// throws ``StrictAbort`` on the first one under --strict.
        func load(_ url: URL, on connection: Connection, progress: ProgressBar, tally: inout Tally) async throws {
            var chunk: [UInt8] = []
            var chunkCount = 0
            var chunkFirstLine = 1
            func flush() async throws {
                guard chunkCount > 0 else { return }
                let data = chunk
                do {
                    let copy = into == .candidates ? TransferQueries.candidatesCopyIn
                        : target == nil ? TransferQueries.validationCopyIn : TransferQueries.validationOfTargetCopyIn
                    tally.imported += try await connection.copyIn(copy) { send in
                        try await send(data)
                    }
                } catch let error as PQError where error.sqlState == .foreignKeyViolation && target != nil {
                    throw CLIError("no target named \(target!) (tovd target list; add one with tovd target add NAME)")
                } catch let error as PQError {
                    throw CLIError("\(file): the database refused lines \(chunkFirstLine)–\(tally.lines): \(error)")
                }
                chunk.removeAll(keepingCapacity: true)
                chunkCount = 0
                chunkFirstLine = tally.lines + 1
            }
            func bad(_ error: JSONLLineError) throws {
                if strict { throw StrictAbort(line: error) }
                tally.bad += 1
                if tally.bad <= 20 { FileHandle.standardError.write(Data("\n\(file):\(error)".utf8)) }
            }
            let lines = try JSONLReader(url: url).makeIterator()
            while let result = lines.next() {
                tally.lines = lines.lineNumber
                switch result {
                case .failure(let error):
                    if let readError = lines.readError {
                        throw CLIError("\(file): cannot read past line \(error.line - 1): \(readError); check the file and the disk")
                    }
                    try bad(error)
                case .success(let example):
                    switch Self.copyRow(example) {
                    case .failure(let reason):
                        try bad(JSONLLineError(line: lines.lineNumber, reason: reason.message))
                    case .success(let row):
                        if let target {
                            CopyText.appendEscaped(target.utf8, to: &chunk)
                            chunk.append(0x09)
                        }
                        chunk += row
                        chunkCount += 1
                        if chunkCount >= chunkRows { try await flush() }
                    }
                }
                progress.update(tally.lines)
            }
            try await flush()
        }

        struct Unstorable: Error { var message: String }

        /// One COPY text line (prompt, response, source, meta), or why PostgreSQL would refuse the row
        /// (one such value would fail the COPY of every row around it): text and jsonb cannot hold NUL
        /// (U+0000), which JSON spells `\u0000`, and jsonb's numbers are `numeric`, which has limits.
        /// `meta` is written with ``JSONValue/write(to:)``, so each number reaches jsonb with its value
        /// exactly as the file wrote it (never through Int64 or Double).
        static func copyRow(_ example: JSONLExample) -> Result<[UInt8], Unstorable> {
            for (field, text) in [("prompt", example.prompt), ("response", example.response), ("source", example.source ?? "")]
            where text.utf8.contains(0) {
                return .failure(Unstorable(message: "\"\(field)\" contains a NUL character (\\u0000), which PostgreSQL text cannot store"))
            }
            if let meta = example.meta, let reason = unstorable(.object(meta)) {
                return .failure(Unstorable(message: "meta \(reason)"))
            }
            var row: [UInt8] = []
            CopyText.appendEscaped(example.prompt.utf8, to: &row)
            row.append(0x09)
            CopyText.appendEscaped(example.response.utf8, to: &row)
            row.append(0x09)
            if let source = example.source { CopyText.appendEscaped(source.utf8, to: &row) } else { row += CopyText.null }
            row.append(0x09)
            if let meta = example.meta, !meta.isEmpty {
                var json: [UInt8] = []
                JSONValue.object(meta).write(to: &json)
                CopyText.appendEscaped(json, to: &row)
            } else {
                row += CopyText.null
            }
            row.append(0x0A)
            return .success(row)
        }

        /// Why jsonb would refuse `value`, or nil.
        static func unstorable(_ value: JSONValue) -> String? {
            switch value {
            case .string(let s):
                return s.utf8.contains(0) ? nulReason : nil
            case .array(let items):
                return items.lazy.compactMap(unstorable).first
            case .object(let members):
                if members.keys.contains(where: { $0.utf8.contains(0) }) { return nulReason }
                return members.values.lazy.compactMap(unstorable).first
            case .number(let n):
                return fitsNumeric(n) ? nil : "holds a number beyond PostgreSQL's numeric (at most 131072 digits before the decimal point and 16383 after)"
            case .null, .bool:
                return nil
            }
        }

        static let nulReason = "contains a NUL character (\\u0000), which PostgreSQL jsonb cannot store"

        /// PostgreSQL's numeric limits (measured on 15: `1e131071` and `1e-16383` are stored,
        /// `1e131072`, `1e-16384` and `1.5e-16383` are "value overflows numeric format").
        /// Counting a leading `0` as an integer digit errs on the side of refusing.
        static func fitsNumeric(_ n: JSONNumber) -> Bool {
            let (integerDigits, fractionDigits, exponent) = n.shape
            let e = exponent ?? 0
            guard e > -1_000_000, e < 1_000_000 else { return false }
            return integerDigits + e <= 131_072 && fractionDigits - e <= 16_383
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
