import Foundation
import ToVPipeline

/// The shared contexts of a row (its passage, background, situation or story), normalised so that the same
/// text written with other spacing, case or punctuation gives the same key.
///
/// A natural_instructions prompt is the subtask's definition, a newline, and the input; the input is a run
/// of labelled parts ("Passage: …", "Background Paragraph: …", "Story: …", "Question: …"). Every part of
/// at least ``minimumWords`` words is a context, except the parts a row asks or answers with (labels
/// containing question, answer, option, choice or hint): those differ per row and would glue unrelated
/// rows together. A definition is the same in every row of a subtask, so it is cut first
/// (``commonPrefix``); an input without labels is one part.
public enum ContextKey {
    /// Shorter parts are not contexts (a label like "Sentence: Yes." would link unrelated rows).
    public static let minimumWords = 12

    static let askingLabels = ["question", "answer", "option", "choice", "hint", "output", "target"]

    /// Lower-cased runs of ASCII letters and digits (bytes ≥ 0x80 count as letters, so non-English words stay
    /// whole): the comparison unit of contexts and of overlap checks. Works on UTF-8 bytes, since the
    /// overlap check reads every pool and θ0 row.
    public static func words(_ text: String) -> [String] {
        var out: [String] = []
        var word: [UInt8] = []
        for b in text.utf8 {
            if let c = TextWords.wordByte(b) {
                word.append(c)
            } else if !word.isEmpty {
                out.append(String(decoding: word, as: UTF8.self))
                word.removeAll(keepingCapacity: true)
            }
        }
        if !word.isEmpty { out.append(String(decoding: word, as: UTF8.self)) }
        return out
    }

    /// 64-bit FNV-1a of each of ``words(_:)`` without building the strings.
    public static func wordHashes(_ text: String) -> [UInt64] { TextWords.hashes(text.utf8) }

    /// The normalised form of a context: its words joined by single spaces.
    public static func normalize(_ text: String) -> String { words(text).joined(separator: " ") }

    /// The longest prefix all `prompts` share, cut back to a line break (the subtask's definition).
    public static func commonPrefix(_ prompts: [String]) -> String {
        guard var prefix = prompts.first.map(Array.init) else { return "" }
        for p in prompts.dropFirst() {
            var k = 0
            let chars = Array(p)
            while k < prefix.count && k < chars.count && prefix[k] == chars[k] { k += 1 }
            prefix.removeLast(prefix.count - k)
            if prefix.isEmpty { break }
        }
        guard let cut = prefix.lastIndex(of: "\n") else { return "" }
        return String(prefix[...cut])
    }

    /// The labelled parts of an input: (label, text); text before the first label has label "".
    public static func parts(_ input: String) -> [(label: String, text: String)] {
        // A label is 1–4 capitalised words followed by ": " at the start of the input, of a line, or after
        // sentence-ending punctuation.
        let pattern = #"(?:^|(?<=[\n.?!"”]))\s*([A-Z][A-Za-z]*(?: [A-Za-z]+){0,3}):\s"#
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return [("", input)] }
        let ns = input as NSString
        let matches = regex.matches(in: input, range: NSRange(location: 0, length: ns.length))
        var out: [(String, String)] = []
        var cursor = 0, label = ""
        for m in matches {
            let text = ns.substring(with: NSRange(location: cursor, length: m.range.location - cursor))
            if !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || !label.isEmpty { out.append((label, text)) }
            label = ns.substring(with: m.range(at: 1))
            cursor = m.range.location + m.range.length
        }
        out.append((label, ns.substring(from: cursor)))
        return out
    }

    /// The normalised contexts of a row whose subtask definition is `prefix`.
    public static func contexts(prompt: String, prefix: String) -> [String] {
        let input = prompt.hasPrefix(prefix) ? String(prompt.dropFirst(prefix.count)) : prompt
        return parts(input).compactMap { label, text in
            let l = label.lowercased()
            guard !askingLabels.contains(where: { l.contains($0) }) else { return nil }
            let w = words(text)
            return w.count >= minimumWords ? w.joined(separator: " ") : nil
        }
    }
}
