import Foundation

/// The text θ0 is pretrained on, built from rows outside the pool.
///
/// natural_instructions prompts repeat their subtask's long definition in every row, and the reading
/// tasks repeat one passage for many questions. Trained on rows as they are, a small model learns to
/// recite those few texts (training loss < 0.3 within 400 steps) and little else. So every prompt line
/// is kept once, at its first occurrence in the corpus, and the response is always kept: each definition
/// and each distinct passage appears exactly once, next to the first question that used it.
public enum PretrainingCorpus {
    /// One document per row, in row order: the row's prompt lines not seen in an earlier row, a newline,
    /// then its response. Lines are compared after trimming white space; empty lines are dropped.
    public static func documents(_ rows: [(prompt: String, response: String)]) -> [String] {
        var seen = Set<Substring>()
        return rows.map { row in
            var kept: [Substring] = []
            for line in row.prompt.split(separator: "\n", omittingEmptySubsequences: true) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard !trimmed.isEmpty else { continue }
                if seen.insert(Substring(trimmed)).inserted { kept.append(Substring(trimmed)) }
            }
            return (kept + [Substring(row.response)]).joined(separator: "\n")
        }
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

/// FNV-1a 64: a fast content fingerprint for cache keys (not a cryptographic hash: a collision only
/// costs a wrong cache hit between two runs the user made on purpose different).
public struct Fingerprint: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01b3
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        value ^= 0xff
        value = value &* 0x0000_0100_0000_01b3
    }

    public mutating func add(_ string: String) { add(string.utf8) }

    public var hex: String { String(format: "%016llx", value) }
}
