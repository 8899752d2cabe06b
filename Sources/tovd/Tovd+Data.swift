import ArgumentParser
import Evaluation
import Foundation
import Synchronization

extension Tovd {
    struct DataCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "data",
            abstract: "Fetch and convert the real evaluation data set (BIG-bench natural_instructions).",
            subcommands: [Fetch.self, ConvertBigBenchNI.self])

        struct Fetch: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Download bigbench==1.0.0 from PyPI (sdist, ~360 MB, checksum-pinned) and convert its natural_instructions tasks to JSONL.",
                discussion: """
                    Writes CACHE/jsonl/<subtask>.jsonl (61 subtasks, 10 source datasets, ~193k rows), \
                    CACHE/all.jsonl and CACHE/manifest.json. Idempotent: a second run checks the stamp and \
                    does nothing.
                      tovd data fetch bigbench-ni
                    """)

            @Argument(help: "Data set name (only bigbench-ni today).") var dataset: String
            @Option(help: "Cache directory.") var cache = ".cache/bigbench-ni"

            func validate() throws {
                guard dataset == "bigbench-ni" else { throw ValidationError("unknown data set \(dataset); try bigbench-ni") }
            }

            func run() throws {
                let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .deletingLastPathComponent().appendingPathComponent("scripts/fetch-bigbench-ni.sh")
                guard FileManager.default.fileExists(atPath: script.path) else {
                    throw CLIError("scripts/fetch-bigbench-ni.sh is not next to this build; run it from a checkout of tovd")
                }
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/bin/bash")
                process.arguments = [script.path, cache]
                var environment = ProcessInfo.processInfo.environment
                environment["TOVD_BIN"] = CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0]
                    : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0]
                process.environment = environment
                try process.run()
                process.waitUntilExit()
                guard process.terminationStatus == 0 else { throw ExitCode(process.terminationStatus) }
            }
        }

        struct ConvertBigBenchNI: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "convert-bigbench-ni",
                abstract: "Convert extracted natural_instructions/*/task.json files to JSONL (used by the fetch script).")

            @Argument(help: "Directory holding <subtask>/task.json.") var tasks: String
            @Argument(help: "Output directory (jsonl/, all.jsonl, manifest.json).") var output: String

            func run() throws {
                let progress = ProgressBar("convert", total: BigBenchNIConverter.subtaskCount, unit: "subtasks")
                let counter = Counter()
                let converter = BigBenchNIConverter(inputDirectory: URL(fileURLWithPath: tasks), outputDirectory: URL(fileURLWithPath: output)) { subtask in
                    progress.update(counter.next(), note: subtask.name)
                }
                let manifest = try converter.run()
                progress.finish(manifest.subtasks.count)
                print("\(manifest.totalRows) rows from \(manifest.subtasks.count) subtasks (\(manifest.totalSkipped) skipped, \(manifest.failedFiles.count) unreadable files)")
            }
        }
    }
}

/// A thread-safe running count for progress callbacks.
final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
}
