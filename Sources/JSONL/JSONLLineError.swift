/// Why one line of a JSONL file could not become a ``JSONLExample``.
///
/// `reason` never contains the line's text, so it is safe to log; `line` lets a person find it.
public struct JSONLLineError: Error, Sendable, Hashable, CustomStringConvertible {
    /// 1-based line number in the file.
    public var line: Int
    /// What is wrong, phrased so a person can fix the line.
    public var reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    public var description: String { "line \(line): \(reason)" }
}
