/// What ``BigBenchNIConverter`` wrote: `manifest.json` next to the JSONL files.
public struct BigBenchNIManifest: Codable, Sendable, Equatable {
    /// One subtask directory (`subtaskNNN_<dataset>_<task>`).
    public struct Subtask: Codable, Sendable, Equatable {
        /// Directory name, also each row's `source`.
        public var name: String
        /// Source dataset the subtask was built from (e.g. `quoref`, `mctaco`); each row's `meta.dataset`.
        public var dataset: String
        /// Rows written to `jsonl/<name>.jsonl`.
        public var rows: Int
        /// Examples skipped (sum of `skipReasons`).
        public var skipped: Int
        /// Why examples were skipped, with counts.
        public var skipReasons: [String: Int]
        /// SHA-256 of `jsonl/<name>.jsonl` (hex).
        public var sha256: String
    }

    /// Format version of this file.
    public var version: Int = 1
    public var subtasks: [Subtask]
    /// Rows per source dataset, summed over subtasks.
    public var datasets: [String: Int]
    public var totalRows: Int
    public var totalSkipped: Int
    /// SHA-256 of `all.jsonl` (hex).
    public var allSHA256: String
    /// Subtask directories whose `task.json` could not be used at all, with the reason.
    public var failedFiles: [String: String]
}
