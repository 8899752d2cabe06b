import Foundation
import JSONL
import Surrogate
import Testing
@testable import Evaluation

@Suite struct BigBenchNIConverterTests {
    @Test func convertsFixtureAndCountsSkips() throws {
        let out = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let seen = NameLog()
        let manifest = try BigBenchNIConverter(inputDirectory: Fixtures.naturalInstructions, outputDirectory: out,
                                               onSubtask: { entry in seen.append(entry.name) }).run()
        #expect(seen.names == manifest.subtasks.map(\.name))

        #expect(manifest.subtasks.map(\.name) == ["subtask001_quoref_question_generation", "subtask046_miscellaenous_question_typing"])
        #expect(manifest.failedFiles == ["subtask099_broken_json": "bad JSON in task.json"])
        let quoref = manifest.subtasks[0]
        #expect(quoref.dataset == "quoref")
        #expect(quoref.rows == 4)
        #expect(quoref.skipped == 7)
        #expect(quoref.skipReasons == ["missing input": 1, "empty target": 2, "non-string target": 1,
                                       "input is not a string": 1, "missing target": 1, "example is not an object": 1])
        #expect(manifest.subtasks[1].dataset == "misc")
        #expect(manifest.subtasks[1].rows == 2)
        #expect(manifest.totalRows == 6 && manifest.totalSkipped == 7)
        #expect(manifest.datasets == ["quoref": 4, "misc": 2])

        // Rows read back through the public reader, and checksums match the files.
        let rows = try JSONLReader(url: out.appendingPathComponent("jsonl/subtask001_quoref_question_generation.jsonl")).map { try $0.get() }
        #expect(rows.count == 4)
        #expect(rows[0].prompt == "Definition: Write a question about the passage.\nPassage: Ann met Bob.")
        #expect(rows[0].response == "Who met Bob?")
        #expect(rows[0].source == "subtask001_quoref_question_generation")
        #expect(rows[0].meta == ["dataset": .string("quoref"), "example": .int(0), "targets": .int(2)])
        #expect(rows[2].response == "What is it?")
        #expect(rows[3].response == "Ça va?" && rows[3].meta?["example"] == .int(10))
        let misc = try JSONLReader(url: out.appendingPathComponent("jsonl/subtask046_miscellaenous_question_typing.jsonl")).map { try $0.get() }
        #expect(misc[0].prompt == "Definition: Generate the type of the given question-answer pair. Question: Who wrote Hamlet? Answer: Shakespeare.")
        #expect(misc[1].response == "Number.")
        let all = try JSONLReader(url: out.appendingPathComponent("all.jsonl")).map { try $0.get() }
        #expect(all == rows + misc)
        #expect(try SHA256.hexDigest(ofFile: out.appendingPathComponent("all.jsonl")) == manifest.allSHA256)
        #expect(try SHA256.hexDigest(ofFile: out.appendingPathComponent("jsonl/subtask001_quoref_question_generation.jsonl")) == quoref.sha256)
        let onDisk = try JSONDecoder().decode(BigBenchNIManifest.self, from: Data(contentsOf: out.appendingPathComponent("manifest.json")))
        #expect(onDisk == manifest)
    }

    @Test func conversionIsDeterministic() throws {
        let a = try Fixtures.temporaryDirectory(), b = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let ma = try BigBenchNIConverter(inputDirectory: Fixtures.naturalInstructions, outputDirectory: a).run()
        let mb = try BigBenchNIConverter(inputDirectory: Fixtures.naturalInstructions, outputDirectory: b).run()
        #expect(ma == mb)
    }

    @Test func datasetNames() {
        #expect(BigBenchNIConverter.dataset(ofSubtask: "subtask043_essential_terms_answering_incomplete_questions") == "essential_terms")
        #expect(BigBenchNIConverter.dataset(ofSubtask: "subtask047_misc_answering_science_questions") == "misc")
        #expect(BigBenchNIConverter.dataset(ofSubtask: "subtask045_miscellaneous_sentence_paraphrasing") == "misc")
        #expect(BigBenchNIConverter.dataset(ofSubtask: "subtask026_drop_question_generation") == "drop")
        #expect(BigBenchNIConverter.dataset(ofSubtask: "weird") == "weird")
    }

    @Test func missingInputDirectoryThrows() {
        #expect(throws: (any Error).self) {
            try BigBenchNIConverter(inputDirectory: URL(fileURLWithPath: "/nonexistent-\(UUID())"),
                                    outputDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("x-\(UUID())")).run()
        }
    }

    /// Opt-in: converts the real extracted data set (`scripts/fetch-bigbench-ni.sh` output) when
    /// `TOVD_BIGBENCH_NI_DIR` points at the `natural_instructions` directory; writes next to it unless
    /// `TOVD_BIGBENCH_NI_OUT` is set.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TOVD_BIGBENCH_NI_DIR"] != nil))
    func realData() throws {
        let env = ProcessInfo.processInfo.environment
        let input = URL(fileURLWithPath: env["TOVD_BIGBENCH_NI_DIR"]!)
        let output = env["TOVD_BIGBENCH_NI_OUT"].map { URL(fileURLWithPath: $0) } ?? input.deletingLastPathComponent()
        let start = Date()
        let m = try BigBenchNIConverter(inputDirectory: input, outputDirectory: output).run()
        print("bigbench-ni: \(m.subtasks.count) subtasks, \(m.datasets.count) datasets \(m.datasets.sorted { $0.key < $1.key }), "
              + "\(m.totalRows) rows, \(m.totalSkipped) skipped, failed \(m.failedFiles), all.jsonl sha256 \(m.allSHA256), "
              + "\(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        #expect(m.subtasks.count == 61)
        #expect(m.datasets.count == 10)
    }
}

/// Collects names from a `@Sendable` callback (NSLock rather than `Mutex`, which needs macOS 15).
final class NameLog: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []
    func append(_ name: String) { lock.lock(); storage.append(name); lock.unlock() }
    var names: [String] { lock.lock(); defer { lock.unlock() }; return storage }
}
