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
    /// What the daemon's bootstrap θ0 reads of U's rows (``BootstrapPretraining``; `tovd bench bootstrap`
    /// compares the two). `tovd pretrain` and the evaluation's θ0 read ``Document``s instead, which keep
    /// prompt and response apart for the scoring layout.
    public enum Kind: String, Sendable, CaseIterable {
        /// Each row as it is (prompt, newline, response), cut at the context: rows of one source that
        /// share a long instruction repeat it in every row, and a small model learns to recite it.
        case rows
        /// ``PretrainingCorpus/documents(_:)``: a source's common prompt prefix and any prompt line seen
        /// before are kept once, and each document is cut into context-sized windows. The daemon's
        /// since `tovd bench bootstrap` measured it (docs/evaluation.md, "The daemon's bootstrap θ0").
        case deduplicated

        /// The text of each training document, before tokenization.
        public func texts(_ rows: [(source: String?, prompt: String, response: String)]) -> [String] {
            switch self {
            case .rows: rows.map { $0.prompt + "\n" + $0.response }
            case .deduplicated: PretrainingCorpus.documents(rows.map { ($0.source ?? "", $0.prompt, $0.response) })
            }
        }

        /// Next-token examples of `texts`: whole, to be cut at the context by training (`.rows`), or
        /// in windows of `context − 1` tokens (pretraining examples append EOT).
        public func examples(_ texts: [String], tokenizer: Tokenizer, context: Int) -> [Example] {
            let encoded = texts.map { tokenizer.encode($0) }
            return (self == .rows ? encoded : PretrainingCorpus.windows(encoded, length: context - 1))
                .map { Example(prompt: [], response: $0, allTokens: true) }
        }
    }

    /// A row as θ0 reads it: what is left of its prompt, and its response.
    public struct Document: Sendable, Equatable {
        public var prompt: String
        public var response: String
        public init(prompt: String, response: String) {
            self.prompt = prompt
            self.response = response
        }
        /// The plain-text form: the prompt's lines, a newline, the response (the response alone when
        /// nothing of the prompt is left).
        public var text: String { prompt.isEmpty ? response : prompt + "\n" + response }
    }

    /// One document per row, in row order: the row's prompt without repeated parts, a newline, then its response.
    /// Lines are compared after trimming white space; empty lines are dropped.
    public static func documents(_ rows: [(source: String, prompt: String, response: String)]) -> [String] {
        rowsWithoutRepeats(rows).map(\.text)
    }

    /// ``documents(_:)`` with each row's prompt and response apart, for a θ0 pretrained in the scoring
    /// layout (prompt, separator token, response).
    public static func rowsWithoutRepeats(_ rows: [(source: String, prompt: String, response: String)]) -> [Document] {
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
            return Document(prompt: kept.joined(separator: "\n"), response: row.response)
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
