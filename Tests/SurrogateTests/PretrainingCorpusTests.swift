import Foundation
import Testing
@testable import Surrogate

@Suite("θ0 pretraining corpus")
struct PretrainingCorpusTests {
    @Test func repeatedDefinitionsAndPassagesAreKeptOnce() {
        let definition = "Definition: answer the question about the passage."
        let rows: [(source: String, prompt: String, response: String)] = [
            ("ropes", "\(definition)\nPassage: the sky is blue.\nQuestion: what colour is the sky?", "blue"),
            ("ropes", "\(definition)\nPassage: the sky is blue.\nQuestion: is the sky green?", "no"),
            ("ropes", "\(definition)  \n\nPassage: grass is green.\nQuestion: what colour is grass?", "green"),
        ]
        let documents = PretrainingCorpus.documents(rows)
        #expect(documents == [
            "\(definition)\nPassage: the sky is blue.\nQuestion: what colour is the sky?\nblue",
            "Question: is the sky green?\nno",
            "Passage: grass is green.\nQuestion: what colour is grass?\ngreen",
        ])
        // Every distinct line is there exactly once.
        let lines = documents.flatMap { $0.split(separator: "\n") }
        #expect(lines.filter { $0 == Substring(definition) }.count == 1)
        #expect(lines.filter { $0 == "Passage: the sky is blue." }.count == 1)
    }

    @Test func responsesAreAlwaysKept() {
        let documents = PretrainingCorpus.documents([("a", "same prompt", "yes"), ("a", "same prompt", "yes")])
        #expect(documents == ["same prompt\nyes", "yes"])
    }

    /// Some subtasks run the definition into the input on one line ("… Prompt: An event …"): the
    /// source's common prefix is cut from all but its first row, at a word boundary.
    @Test func sameLineDefinitionsAreCutAsTheSourcesCommonPrefix() {
        let definition = "Definition: order the events. Prompt: "
        let documents = PretrainingCorpus.documents([
            ("mctaco", definition + "An event happens. Question: what next?", "later"),
            ("mctaco", definition + "Another event. Question: what before?", "earlier"),
            ("other", definition + "Kept whole: another source.", "x"),
        ])
        #expect(documents == [
            definition.trimmingCharacters(in: .whitespaces) + " An event happens. Question: what next?\nlater",
            "Another event. Question: what before?\nearlier",
            definition.trimmingCharacters(in: .whitespaces) + " Kept whole: another source.\nx",
        ])
        #expect(PretrainingCorpus.commonPrefix("the cat sat", "the car sat") == "the ")
        #expect(PretrainingCorpus.commonPrefix("abc", "abc") == "abc")
    }

    @Test func windowsCoverLongDocumentsAndDropShortTails() {
        let long = (0..<25).map(Int32.init)
        let windows = PretrainingCorpus.windows([long, [1, 2, 3]], length: 10, minimum: 8)
        // 25 tokens → 10 + 10 (+ a 5-token tail dropped); a short document is kept whole.
        #expect(windows == [Array(0..<10), Array(10..<20), [1, 2, 3]])
    }
}
