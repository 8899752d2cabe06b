import Foundation
import JSONL
import Surrogate

/// Converts BIG-bench 1.0.0 `natural_instructions` subtasks (`<dir>/<subtask>/task.json`) to JSONL rows.
///
/// Each `task.json` has `name`, `task_prefix` (the instruction), and `examples: [{input, target: [String]}]`
/// (or `target_scores` in other BIG-bench tasks). Each example becomes
/// `{"prompt": task_prefix + "\n" + input, "response": target[0], "source": <subtask>,
///   "meta": {"dataset", "example", "targets"}}`.
/// Output, in `outputDirectory`: `jsonl/<subtask>.jsonl`, `all.jsonl` (every row, subtasks in name order),
/// and `manifest.json` (``BigBenchNIManifest``).
///
/// Bad examples (missing or non-string input, missing, empty or non-string target) and unreadable files are
/// counted with a reason and skipped; nothing in the input can make the conversion crash.
public struct BigBenchNIConverter: Sendable {
    /// File name of the pinned BIG-bench source distribution on PyPI.
    public static let sdistName = "bigbench-1.0.0.tar.gz"
    /// SHA-256 of ``sdistName`` (checked against PyPI's simple index when pinned).
    public static let sdistSHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
    /// Size of ``sdistName`` in bytes.
    public static let sdistBytes = 358_249_635
    /// Subtask directories in `bigbench/benchmark_tasks/natural_instructions` of 1.0.0.
    public static let subtaskCount = 61

    /// Directory holding one sub-directory per subtask.
    public var inputDirectory: URL
    /// Where `jsonl/`, `all.jsonl` and `manifest.json` go (created if missing).
    public var outputDirectory: URL

    /// Called after each subtask is written (for a progress line); not called for failed files.
    public var onSubtask: (@Sendable (BigBenchNIManifest.Subtask) -> Void)?

    public init(inputDirectory: URL, outputDirectory: URL,
                onSubtask: (@Sendable (BigBenchNIManifest.Subtask) -> Void)? = nil) {
        self.inputDirectory = inputDirectory
        self.outputDirectory = outputDirectory
        self.onSubtask = onSubtask
    }

    /// The source dataset of a subtask name: `subtask036_qasc_topic_word…` → `qasc`.
    ///
    /// natural_instructions v1 has 61 subtasks over 10 datasets (quoref, mctaco, cosmosqa, drop, winogrande,
    /// qasc, essential_terms, misc, multirc, ropes); the "misc" group is spelt three ways in the names.
    public static func dataset(ofSubtask name: String) -> String {
        var parts = name.split(separator: "_").map(String.init)
        if let first = parts.first, first.hasPrefix("subtask") { parts.removeFirst() }
        guard let head = parts.first else { return name }
        switch head {
        case "misc", "miscellaneous", "miscellaenous": return "misc"
        case "essential": return parts.count > 1 && parts[1] == "terms" ? "essential_terms" : head
        default: return head
        }
    }

    /// Runs the conversion and writes `manifest.json`.
    /// - Returns: the manifest that was written.
    /// - Throws: only when the input directory cannot be listed or an output file cannot be written.
    @discardableResult
    public func run() throws -> BigBenchNIManifest {
        let fm = FileManager.default
        let jsonlDir = outputDirectory.appendingPathComponent("jsonl")
        try fm.createDirectory(at: jsonlDir, withIntermediateDirectories: true)
        let names = try fm.contentsOfDirectory(atPath: inputDirectory.path).filter { name in
            var isDir: ObjCBool = false
            return fm.fileExists(atPath: inputDirectory.appendingPathComponent(name).path, isDirectory: &isDir) && isDir.boolValue
                && fm.fileExists(atPath: inputDirectory.appendingPathComponent(name).appendingPathComponent("task.json").path)
        }.sorted()

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let allURL = outputDirectory.appendingPathComponent("all.jsonl")
        let all = try JSONLFileWriter(url: allURL)
        var subtasks: [BigBenchNIManifest.Subtask] = []
        var failed: [String: String] = [:]
        var datasets: [String: Int] = [:]

        for name in names {
            let dataset = Self.dataset(ofSubtask: name)
            let taskURL = inputDirectory.appendingPathComponent(name).appendingPathComponent("task.json")
            let parsed = Self.readTask(taskURL)
            guard case .success(let task) = parsed else {
                if case .failure(let reason) = parsed { failed[name] = reason.message }
                continue
            }
            let out = try JSONLFileWriter(url: jsonlDir.appendingPathComponent("\(name).jsonl"))
            var rows = 0
            var reasons: [String: Int] = [:]
            for (index, raw) in task.examples.enumerated() {
                switch Self.row(raw, index: index, prefix: task.prefix, subtask: name, dataset: dataset) {
                case .success(let example):
                    let line = try encoder.encode(example)
                    try out.write(line)
                    try all.write(line)
                    rows += 1
                case .failure(let reason):
                    reasons[reason.message, default: 0] += 1
                }
            }
            let sha = try out.finish()
            datasets[dataset, default: 0] += rows
            let entry = BigBenchNIManifest.Subtask(name: name, dataset: dataset, rows: rows,
                                                   skipped: reasons.values.reduce(0, +), skipReasons: reasons, sha256: sha)
            subtasks.append(entry)
            onSubtask?(entry)
        }
        let allSHA = try all.finish()
        let manifest = BigBenchNIManifest(
            subtasks: subtasks, datasets: datasets,
            totalRows: subtasks.reduce(0) { $0 + $1.rows }, totalSkipped: subtasks.reduce(0) { $0 + $1.skipped },
            allSHA256: allSHA, failedFiles: failed)
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try pretty.encode(manifest).write(to: outputDirectory.appendingPathComponent("manifest.json"), options: .atomic)
        return manifest
    }

    struct Task {
        var prefix: String
        var examples: [Any]
    }

    struct Reason: Error { var message: String }

    static func readTask(_ url: URL) -> Result<Task, Reason> {
        guard let data = try? Data(contentsOf: url) else { return .failure(Reason(message: "unreadable task.json")) }
        guard let object = try? JSONSerialization.jsonObject(with: data) else { return .failure(Reason(message: "bad JSON in task.json")) }
        guard let top = object as? [String: Any] else { return .failure(Reason(message: "task.json is not an object")) }
        guard let examples = top["examples"] as? [Any] else { return .failure(Reason(message: "task.json has no \"examples\" array")) }
        let prefix = top["task_prefix"] as? String ?? ""
        return .success(Task(prefix: prefix, examples: examples))
    }

    /// One example → one row. `target` may be a string or a list (first element is used); when it is absent,
    /// the highest-scoring key of `target_scores` is used, as BIG-bench's generative view of a choice task.
    static func row(_ raw: Any, index: Int, prefix: String, subtask: String, dataset: String) -> Result<JSONLExample, Reason> {
        guard let example = raw as? [String: Any] else { return .failure(Reason(message: "example is not an object")) }
        guard let inputAny = example["input"] else { return .failure(Reason(message: "missing input")) }
        guard let input = inputAny as? String else { return .failure(Reason(message: "input is not a string")) }
        if input.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return .failure(Reason(message: "empty input")) }
        let response: String
        var targetCount = 1
        if let targetAny = example["target"] {
            if let s = targetAny as? String {
                response = s
            } else if let list = targetAny as? [Any] {
                guard let first = list.first else { return .failure(Reason(message: "empty target")) }
                guard let s = first as? String else { return .failure(Reason(message: "non-string target")) }
                response = s
                targetCount = list.count
            } else {
                return .failure(Reason(message: "non-string target"))
            }
        } else if let scores = example["target_scores"] as? [String: Any] {
            let numeric = scores.compactMap { key, value -> (String, Double)? in
                (value as? NSNumber).map { (key, $0.doubleValue) }
            }
            guard let best = numeric.max(by: { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 > $1.0) }) else {
                return .failure(Reason(message: "empty target"))
            }
            response = best.0
            targetCount = numeric.count
        } else {
            return .failure(Reason(message: "missing target"))
        }
        if response.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return .failure(Reason(message: "empty target")) }
        // The prefixes end mid-sentence without whitespace ("...about the passage."), so join with a newline.
        let prompt: String
        if prefix.isEmpty || prefix.last!.isWhitespace { prompt = prefix + input } else { prompt = prefix + "\n" + input }
        return .success(JSONLExample(
            prompt: prompt, response: response, source: subtask,
            meta: ["dataset": .string(dataset), "example": .int(Int64(index)), "targets": .int(Int64(targetCount))]))
    }
}
