import Foundation

/// The text θ0 is pretrained on, built from rows outside the pool.
///
/// natural_instructions prompts repeat their subtask's long definition in every row, and the reading
/// tasks repeat one passage for many questions. Trained on rows as they are, a small model learns to
/// recite those few texts (training loss < 0.3 within 400 steps) and little else. So each source's
/// common prompt prefix (its definition and instruction, which some subtasks run into the input on the
/// same line) is kept only in the source's first row, then every remaining prompt line is kept once, at
/// its first occurrence in the corpus; the response is always kept. Each definition and each distinct
/// passage appears exactly once, next to the first question that used it.
public enum PretrainingCorpus {
    /// One document per row, in row order: the row's prompt without repeated parts, a newline, then its response.
    /// Lines are compared after trimming white space; empty lines are dropped.
    public static func documents(_ rows: [(source: String, prompt: String, response: String)]) -> [String] {
        var prefixes: [String: String] = [:]
        for row in rows {
            prefixes[row.source] = prefixes[row.source].map { commonPrefix($0, row.prompt) } ?? row.prompt
        }
        var firstOfSource = Set<String>()
        var seen = Set<Substring>()
        return rows.map { row in
            var prompt = Substring(row.prompt)
            // The prefix of a source with one row is that whole row: nothing repeats, nothing is cut.
            if let prefix = prefixes[row.source], prefix.count < row.prompt.count, !firstOfSource.insert(row.source).inserted {
                prompt = prompt.dropFirst(prefix.count)
            }
            var kept: [Substring] = []
            for line in prompt.split(separator: "\n", omittingEmptySubsequences: true) {
                let trimmed = Substring(line.trimmingCharacters(in: .whitespaces))
                guard !trimmed.isEmpty else { continue }
                if seen.insert(trimmed).inserted { kept.append(trimmed) }
            }
            return (kept + [Substring(row.response)]).joined(separator: "\n")
        }
    }

    /// The longest common prefix of two strings, cut back to a white-space boundary so no word is split.
    static func commonPrefix(_ a: String, _ b: String) -> String {
        var end = a.startIndex
        var lastSpace = a.startIndex
        var i = a.startIndex, j = b.startIndex
        while i < a.endIndex, j < b.endIndex, a[i] == b[j] {
            if a[i].isWhitespace { lastSpace = a.index(after: i) }
            i = a.index(after: i); j = b.index(after: j)
            end = i
        }
        // Cut back when the strings part inside a word: the common part ends in a letter and either
        // string goes on with one ("An" of "An event" and "Another").
        let inWord = end > a.startIndex && !a[a.index(before: end)].isWhitespace
            && ((i < a.endIndex && !a[i].isWhitespace) || (j < b.endIndex && !b[j].isWhitespace))
        return String(a[..<(inWord ? lastSpace : end)])
    }

    /// Cuts each token sequence into windows of at most `length` tokens, so a long passage is learned
    /// whole instead of being cut at the context (pretraining examples are truncated from the right).
    /// Windows shorter than `minimum` tokens (a document's short tail) are dropped.
    public static func windows(_ documents: [[Int32]], length: Int, minimum: Int = 8) -> [[Int32]] {
        precondition(length >= 1)
        var out: [[Int32]] = []
        for document in documents {
            var start = 0
            while start < document.count {
                let end = min(start + length, document.count)
                if end - start >= minimum || (start == 0 && end - start > 0) { out.append(Array(document[start..<end])) }
                start = end
            }
        }
        return out
    }
}
