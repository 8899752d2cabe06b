import ArgumentParser
import Daemon
import Foundation
import PQ
import Surrogate

extension Tovd {
    /// `tovd base`: the θ0s base models can start from (issue 25, "A base model worth nudging").
    struct Base: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import and list θ0 checkpoints that base models can start from instead of the bootstrap.",
            discussion: """
                A θ0 is a language model with its tokenizer, as `tovd pretrain` writes it. Import one, then \
                name it in the setting theta0; the next base model (a rebase: "theta0 changed") draws U and \
                trains θ_bas from it instead of pretraining its own θ0 on U:
                  tovd pretrain corpus.jsonl --output theta0.tovckpt --steps 2000
                  tovd base import theta0.tovckpt --name corpus-v1
                  psql: UPDATE tov.settings SET value = '"corpus-v1"' WHERE key = 'theta0';

                Its shape must be the surrogate setting's: tovd refuses a θ0 of another shape rather than \
                change the model size behind the setting; `tovd base import` prints the surrogate value to \
                set. `tovd status` says which θ0 the live selection was made with (docs/operations.md, \
                "Start from your own θ0").
                """,
            subcommands: [Import.self, List.self])

        struct Import: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Check a θ0 checkpoint file (SHA-256, full decode) and store it in the database under a name.",
                discussion: """
                    The file is decoded as the daemon will decode it (its checksums, model config, tokenizer and \
                    weights) before anything is stored; with --sha256 its SHA-256 must also be the one given. A \
                    stored θ0 is never replaced: import a changed file under a new name. Needs write access to \
                    tov.theta0s (the schema owner's role, as `tovd migrate`).
                    """)

            @Argument(help: "θ0 checkpoint written by `tovd pretrain`.") var file: String
            @Option(help: "Name to store it under (letters, digits, '.', '_', '-'; at most 63). Default: the file name without extension.")
            var name: String?
            @Option(help: "Expected SHA-256 of the file (hex); the import is refused on a mismatch.") var sha256: String?
            @OptionGroup var database: DatabaseOptions

            func run() async throws {
                let bytes: [UInt8]
                do {
                    bytes = try CheckpointFile.readBytes(from: file)
                } catch {
                    throw CLIError("cannot read \(file): \(error)")
                }
                let digest = SHA256.hexDigest(of: Data(bytes))
                if let sha256, sha256.lowercased() != digest {
                    throw CLIError("\(file) has SHA-256 \(digest), not the \(sha256) given; the file is not the one you meant (or was damaged in transit)")
                }
                let checkpoint: SurrogateCheckpoint
                do {
                    checkpoint = try SurrogateCheckpoint.decode(bytes)
                } catch {
                    throw CLIError("\(file) is not a usable θ0 checkpoint: \(error)")
                }
                let config = checkpoint.model.config
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                let configJSON = String(decoding: try encoder.encode(config), as: UTF8.self)
                let name = self.name ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent

                let connection = try await database.connect(applicationName: "tovd base import")
                defer { connection.close() }
                let stored: Bool
                do {
                    stored = try await TrainingStore.theta0Insert(
                        .init(name: name, bytes: bytes, sha256: digest, configJSON: configJSON), on: connection)
                } catch let error as PQError where error.sqlState == .checkViolation {
                    throw CLIError("\"\(name)\" is not a θ0 name: use letters, digits, '.', '_' and '-' (at most 63, starting with a letter or digit); pass --name")
                } catch let error as PQError where error.sqlState == .undefinedTable {
                    throw CLIError("the database has no tov.theta0s: run `tovd migrate up` (schema version 9 or later)")
                }
                guard stored else {
                    throw CLIError("a θ0 named \"\(name)\" is already imported (`tovd base list`); stored θ0s are never replaced: import under another --name")
                }
                let shape = "{\"layers\": \(config.layers), \"width\": \(config.width), \"heads\": \(config.heads), \"context\": \(config.context), \"vocab\": \(config.vocabSize)}"
                print("""
                    imported θ0 "\(name)": \(config.layers)×\(config.width), \(config.heads) heads, context \(config.context), \
                    vocab \(config.vocabSize) (tokenizer \(checkpoint.tokenizer.vocabSize) tokens), \(bytes.count) bytes, sha256 \(digest)
                    to start the next base model from it (a rebase), set both settings; surrogate must be its shape:
                      UPDATE tov.settings SET value = '\(shape)' WHERE key = 'surrogate';
                      UPDATE tov.settings SET value = '"\(name)"' WHERE key = 'theta0';
                    """)
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the imported θ0s: name, shape, size, SHA-256, base models that started from it.")

            @OptionGroup var database: DatabaseOptions

            func run() async throws {
                let connection = try await database.connect(applicationName: "tovd base list")
                defer { connection.close() }
                let rows: [TrainingStore.Theta0Row]
                do {
                    rows = try await TrainingStore.theta0Many(on: connection)
                } catch let error as PQError where error.sqlState == .undefinedTable {
                    throw CLIError("the database has no tov.theta0s: run `tovd migrate up` (schema version 9 or later)")
                }
                guard !rows.isEmpty else {
                    print("no θ0 imported: base models start from the bootstrap θ0 (`tovd base import FILE` adds one)")
                    return
                }
                for row in rows {
                    print("\(row.name)  \(row.config)  \(row.bytes) bytes  sha256 \(row.sha256)  imported \(row.importedAt) by \(row.importedBy)  base models: \(row.baseModels)")
                }
            }
        }
    }
}
