import ArgumentParser
import Daemon
import Foundation
import JSONL
import PQ
import Selection

extension Tovd {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a target's selection (optionally with its Z_val: the recommended training set) as JSONL.",
            discussion: """
                Each line: {"set", "id", "prompt", "response", "source", "meta", "score", "reason", \
                "length_bin", "selection_version"}; "set" is "selected" (a row of the target's selection, \
                tov.selections WHERE target = T; for `default`, tov.selected) or "validation" (a row of the \
                target's Z_val in tov.validation, whose selection fields are null). Selected rows \
                come first, then Z_val rows, each in id order; "source" is the row's own (tov.candidates.source \
                or tov.validation.source). Every selected row is written, as --selected writes it, even two \
                with the same text; a Z_val row is left out when its (prompt, response) repeats a selected row \
                or an earlier Z_val row. The whole export is read in one snapshot, so it is one selection \
                version and one Z_val even while the daemon switches to new ones.
                  tovd export --selected > selected.jsonl
                  tovd export --with-validation -o train.jsonl     # what docs/evaluation.md recommends
                  tovd export --target drop --with-validation -o drop.jsonl

                --manifest PATH also writes a JSON manifest of that same snapshot: target, selection, model \
                and base version, θ0, the settings that shaped it and their SHA-256, tovd and schema version, \
                the selected ids (ascending, with their SHA-256 and counts by reason), the Z_val version and \
                rows, and the time. --as-of PATH writes exactly the selected rows of such a manifest again, \
                rebuilt from tov.selection_history after the selection has moved on (score, reason and \
                length_bin are null: the history keeps membership), and fails if the history cannot give \
                the same ids (docs/operations.md, "Reproducible exports"). tov_reader may run both.
                  tovd export --with-validation -o train.jsonl --manifest train.manifest.json
                  tovd export --as-of train.manifest.json -o train-again.jsonl
                """)

        @Flag(help: "Export the target's selection.") var selected = false
        @Flag(help: "Export the selection followed by the target's Z_val rows that repeat no selected or earlier Z_val row (implies --selected).")
        var withValidation = false
        @Option(help: ArgumentHelp("The target whose selection (and Z_val) to export (tovd target list).", valueName: "name"))
        var target: String = Settings.defaultTarget
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?
        @Option(help: ArgumentHelp("Also write a manifest of the export (JSON) to this file.", valueName: "path")) var manifest: String?
        @Option(help: ArgumentHelp("Write the selected rows a manifest describes, from tov.selection_history (implies --selected).",
                                   valueName: "manifest"))
        var asOf: String?
        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            if let asOf {
                if withValidation {
                    throw ValidationError("--as-of writes the selected rows only: tov.validation keeps no history (the manifest's "
                        + "zval_version and zval_rows say which Z_val went with them)")
                }
                if manifest != nil { throw ValidationError("--as-of writes the rows of \(asOf): that file is their manifest already") }
                return
            }
            guard selected || withValidation else { throw ValidationError("say what to export: --selected or --with-validation") }
        }

        func run() async throws {
            let connection = try await database.connect(applicationName: "tovd export")
            defer { connection.close() }
            // One snapshot for the manifest and the rows: the manifest describes exactly what was written.
            do {
                try await connection.transaction(isolation: .repeatableRead) { tx in
                    if let asOf { return try await exportAsOf(asOf, on: tx) }
                    _ = try await requireTarget(target, on: tx)
                    _ = try await tx.query(TransferQueries.exportTargetSet, [target])
                    let described = manifest == nil ? nil : try await describe(on: tx)
                    let rows = try await copy(withValidation ? TransferQueries.selectedWithValidationCopyOut : TransferQueries.selectedCopyOut, on: tx)
                    if let path = manifest, var m = described {
                        if withValidation { m.validationRowsWritten = Int64(rows - m.ids.count) }
                        try m.write(to: path)
                    }
                }
            } catch let error as PQError where error.sqlState == .insufficientPrivilege {
                throw CLIError("this role may not read what the export needs (\(error.message)): grant it tov_reader "
                    + "(GRANT tov_reader TO <login>), which reads the selections, Z_val and, for a manifest or --as-of, "
                    + "the selection history and model metadata; or run it as the daemon's role")
            }
            if let manifest { FileHandle.standardError.write(Data("manifest written to \(manifest)\n".utf8)) }
        }

        /// The manifest of the export about to be written, read in its snapshot.
        func describe(on tx: Connection) async throws -> ExportManifest {
            let r = try await tx.query(TransferQueries.manifestGet).first!
            var score: Int64 = 0, random: Int64 = 0, importance: Int64 = 0
            var ids: [Int64] = []
            for row in try await tx.query(TransferQueries.selectionIdsGet) {
                ids.append(try row.get(Int64.self, "id"))
                // The schema admits only these reasons; an unknown one would count as score.
                switch SelectedItem.Reason(rawValue: try row.get(String.self, "reason")) {
                case .random: random += 1
                case .importance: importance += 1
                case .score, nil: score += 1
                }
            }
            let settingsText = try r.get(String.self, "settings")
            let settings: JSONValue
            do { settings = try JSONValue.parse(ArraySlice(Array(settingsText.utf8))) } catch {
                throw CLIError("the database returned settings tovd cannot read as JSON (\(error)); nothing was exported")
            }
            return ExportManifest(
                target: target, targetID: Int64(try r.get(Int32.self, "target_id")),
                selectionVersion: try r.get(Int64.self, "selection_version"),
                modelVersion: try r.getOptional(Int32.self, "model_version").map(Int64.init),
                baseVersion: try r.getOptional(Int32.self, "base_version").map(Int64.init),
                theta0: try r.getOptional(String.self, "theta0"), settings: settings,
                tovdVersion: Tovd.version, tovdSHA256: ExportManifest.executableSHA256(),
                schemaVersion: Int64(try r.get(Int32.self, "schema_version")), ids: ids, scoreRows: score, randomRows: random, importanceRows: importance,
                zvalVersion: try r.get(Int64.self, "zval_version"), zvalRows: try r.get(Int64.self, "zval_rows"),
                validationRowsWritten: nil, exportedAt: try r.get(String.self, "exported_at"))
        }

        /// `--as-of`: rebuilds the manifest's selection from tov.selection_history, checks it is the
        /// same ids before writing a line, and writes those rows.
        func exportAsOf(_ path: String, on tx: Connection) async throws {
            let m = try ExportManifest.readAsOf(path)
            _ = try await tx.query(TransferQueries.exportAsOfSet, [m.targetID, m.selectionVersion])
            var ids: [Int64] = []
            var missing: [Int64] = []
            for row in try await tx.query(TransferQueries.asOfIdsGet) {
                let id = try row.get(Int64.self, "id")
                ids.append(id)
                if try !row.get(Bool.self, "present") { missing.append(id) }
            }
            guard ids == m.ids else {
                let extra = Set(ids).subtracting(m.ids).count, lacking = Set(m.ids).subtracting(ids).count
                throw CLIError("tov.selection_history cannot reproduce \(path): at selection version \(m.selectionVersion) of target "
                    + "\(m.target) (id \(m.targetID)) it gives \(ids.count) rows (SHA-256 \(ExportManifest.idsSHA256(ids))), the manifest "
                    + "\(m.ids.count) (\(m.idsSHA256)): \(lacking) of its rows missing, \(extra) not in it. Is this the database it was "
                    + "written from, and was history deleted? Nothing was written")
            }
            guard missing.isEmpty else {
                throw CLIError("\(missing.count) of the \(ids.count) rows of \(path) were deleted from tov.candidates since (ids "
                    + "\(missing.prefix(10).map(String.init).joined(separator: ", "))\(missing.count > 10 ? ", …" : "")): their text is gone, "
                    + "so the export cannot be reproduced. Nothing was written")
            }
            let rows = try await copy(TransferQueries.asOfCopyOut, on: tx)
            guard rows == ids.count else {
                throw CLIError("wrote \(rows) rows where \(path) has \(ids.count): the output is incomplete, do not use it")
            }
        }

        /// COPYs `sql` to the output; returns the lines written.
        func copy(_ sql: String, on tx: Connection) async throws -> Int {
            let handle: FileHandle
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: nil), let h = FileHandle(forWritingAtPath: output) else {
                    throw CLIError("cannot write \(output): check the directory exists and is writable")
                }
                handle = h
            } else {
                handle = .standardOutput
            }
            let progress = ProgressBar("export", total: nil)
            var rows = 0
            var buffer: [UInt8] = []
            try await tx.copyOut(sql) { chunk in
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
            return rows
        }
    }
}
