import Foundation
import Testing
@testable import Surrogate

/// The daemon's bootstrap θ0 corpus: what each corpus feeds the model, and that training runs.
@Suite("Bootstrap pretraining")
struct BootstrapPretrainingTests {
    static let instruction = "Definition: read the passage and answer the question about it in a few words."
    /// Two sources; every row of the first repeats its instruction and one of two passages.
    static let u: [(source: String?, prompt: [UInt8], response: [UInt8])] = (0..<12).map { i in
        let passage = i % 2 == 0 ? "Rivers flood in spring." : "Snow melts in March."
        let prompt = i < 8 ? "\(instruction)\nPassage: \(passage)\nQuestion \(i): when?" : "add \(i) and \(i + 1)"
        return (i < 8 ? "ropes" : "drop", Array(prompt.utf8), Array((i < 8 ? "spring" : "\(2 * i + 1)").utf8))
    }
    static let tokenizer = Tokenizer.train(sample: u.map { $0.prompt + [0x0A] + $0.response }, vocabSize: 300)

    static func text(_ documents: [Example]) -> [String] {
        documents.map { String(decoding: tokenizer.decode($0.response), as: UTF8.self) }
    }

    @Test func rowsCorpusIsEachRowAsItIs() {
        let recipe = BootstrapPretraining(corpus: .rows, steps: 1, learningRate: 1e-3, seed: 0)
        let documents = recipe.documents(Self.u, tokenizer: Self.tokenizer, context: 16)
        #expect(documents.count == Self.u.count)
        #expect(documents.allSatisfy { $0.allTokens })
        let rows = Self.u.map { String(decoding: $0.prompt + [0x0A] + $0.response, as: UTF8.self) }
        #expect(Self.text(documents) == rows)
    }

    @Test func deduplicatedCorpusKeepsTheInstructionAndEachPassageOnce() {
        let recipe = BootstrapPretraining(steps: 1, learningRate: 1e-3, seed: 0)
        #expect(recipe.corpus == .deduplicated)
        // Windows of at most context − 1 tokens (the model's next-token span).
        #expect(recipe.documents(Self.u, tokenizer: Self.tokenizer, context: 24).allSatisfy { $0.allTokens && $0.response.count <= 23 })
        let documents = recipe.documents(Self.u, tokenizer: Self.tokenizer, context: 1024)
        let all = Self.text(documents).joined(separator: "\n")
        func occurrences(_ s: String) -> Int { all.components(separatedBy: s).count - 1 }
        #expect(occurrences("Definition: read the passage") == 1)
        // A passage line is kept at its first occurrence. The source's first row keeps its whole prompt,
        // so its passage comes back once more without the "Passage: " label (part of the common
        // prefix): 2 of 4 for the first row's passage, 1 of 4 for the other.
        #expect(occurrences("Rivers flood in spring.") == 2)
        #expect(occurrences("Snow melts in March.") == 1)
        // Every question and every response is still there.
        for i in 0..<8 { #expect(occurrences("Question \(i): when?") == 1) }
        #expect(occurrences("when?\nspring") == 8)
        // "add " starts every row of the second source: its first row keeps it, the others lose it.
        for i in 8..<12 { #expect(occurrences("\(i) and \(i + 1)\n\(2 * i + 1)") == 1) }
        #expect(occurrences("add ") == 1)
        let rowsTokens = BootstrapPretraining(corpus: .rows, steps: 1, learningRate: 1e-3, seed: 0)
            .documents(Self.u, tokenizer: Self.tokenizer, context: 1024).reduce(0) { $0 + $1.response.count }
        #expect(documents.reduce(0) { $0 + $1.response.count } < rowsTokens / 2)
    }

    @Test func rowsWithoutASourceStillLoseRepeatedLines() {
        let unsourced = Self.u.map { (source: String?.none, prompt: $0.prompt, response: $0.response) }
        let documents = BootstrapPretraining(steps: 1, learningRate: 1e-3, seed: 0).documents(unsourced, tokenizer: Self.tokenizer, context: 1024)
        let all = Self.text(documents).joined()
        // The instruction is a line of its own here, so line de-duplication alone keeps it once.
        #expect(all.components(separatedBy: "Definition: read the passage").count - 1 == 1)
    }

    @Test func zeroStepsLeaveTheModelAsInitialisedAndStepsTrainIt() {
        let documents = BootstrapPretraining(steps: 1, learningRate: 1e-3, seed: 0).documents(Self.u, tokenizer: Self.tokenizer, context: 16)
        let untouched = Model(config: .tiny, seed: 3)
        let initial = untouched.params
        BootstrapPretraining(steps: 0, learningRate: 1e-2, seed: 0).train(untouched, on: documents)
        #expect(untouched.params == initial)

        let trained = Model(config: .tiny, seed: 3)
        let before = trained.losses(documents).reduce(0) { $0 + $1.meanNLL }
        var steps = 0
        BootstrapPretraining(steps: 30, learningRate: 1e-2, seed: 0).train(trained, on: documents, progress: { _ in steps += 1 })
        #expect(steps == 30)
        #expect(trained.losses(documents).reduce(0) { $0 + $1.meanNLL } < before)
    }
}
