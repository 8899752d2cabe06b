import Foundation
import ToVPipeline

/// Finds which of a set of contexts occur, word for word (``ContextKey/words(_:)``), inside other texts:
/// the measured overlap the report prints, and the filter that keeps held-out contexts out of the pool and
/// θ0's text.
///
/// Each context is indexed by the hash of its first ``anchorWords`` words; a text is scanned once, and every
/// anchor hit is checked against the whole context. Linear in the text's length.
public struct ContextOverlap: Sendable {
    public static let anchorWords = 8

    /// Word hashes of each context.
    let contexts: [[UInt64]]
    /// Anchor hash → indices of the contexts starting with it.
    let anchors: [UInt64: [Int]]

    /// - Parameter contexts: normalised contexts (shorter than ``anchorWords`` words are ignored).
    public init(contexts: [String]) {
        let hashed = contexts.map(ContextKey.wordHashes)
        var anchors: [UInt64: [Int]] = [:]
        for (i, words) in hashed.enumerated() where words.count >= Self.anchorWords {
            anchors[Self.anchor(words[0..<Self.anchorWords]), default: []].append(i)
        }
        self.contexts = hashed
        self.anchors = anchors
    }

    static func anchor(_ words: ArraySlice<UInt64>) -> UInt64 { TextWords.run(words) }

    /// Indices of the contexts that occur in `text`.
    public func contained(in text: String) -> Set<Int> {
        let words = ContextKey.wordHashes(text)
        guard words.count >= Self.anchorWords, !anchors.isEmpty else { return [] }
        var found = Set<Int>()
        for start in 0...(words.count - Self.anchorWords) {
            guard let candidates = anchors[Self.anchor(words[start..<start + Self.anchorWords])] else { continue }
            for c in candidates where !found.contains(c) {
                let context = contexts[c]
                if start + context.count <= words.count, words[start..<start + context.count].elementsEqual(context) { found.insert(c) }
            }
        }
        return found
    }

    /// Indices of the contexts that occur in any of `texts`.
    public func contained(inAny texts: [String]) -> Set<Int> {
        texts.reduce(into: Set<Int>()) { $0.formUnion(contained(in: $1)) }
    }
}
